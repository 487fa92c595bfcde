/**
 * Where a handler load failure points: the location Node prints above a syntax error, and
 * the first stack frame outside Node and orbit for anything thrown while loading.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decoratedLocation, describeLoadFailure, firstUserFrame } from '../../src/worker/load-failure';

describe('decoratedLocation', () => {
  test('reads file:line and the caret column from a CommonJS syntax error stack', () => {
    const stack = "/srv/h/handler.js:2\n  let x = ;\n          ^\n\nSyntaxError: Unexpected token ';'\n    at wrapSafe (node:internal/modules/cjs/loader:1464:18)";
    expect(decoratedLocation(stack)).toEqual({ file: '/srv/h/handler.js', line: 2, column: 11 });
  });

  test('counts a tab in the caret indent as one column and turns a file URL into a path', () => {
    const stderr = "\nfile:///srv/h/handler.mjs:7\n\tlet x = ;\n\t        ^\n\nSyntaxError: Unexpected token ';'\n";
    expect(decoratedLocation(stderr)).toEqual({ file: '/srv/h/handler.mjs', line: 7, column: 10 });
  });

  test('finds nothing in an ordinary stack', () => {
    expect(decoratedLocation("SyntaxError: Unexpected token ';'\n    at compileSourceTextModule (node:internal/modules/esm/utils:346:16)")).toBeUndefined();
    expect(decoratedLocation('Error: code:42\n    at f (/a.js:1:2)\n    at g (/a.js:3:4)')).toBeUndefined();
  });
});

describe('firstUserFrame', () => {
  test("skips Node's internals and orbit's own modules", () => {
    const orbitFile = resolve(__dirname, '../../src/worker/load-handler.ts');
    const stack = [
      "Error: Cannot find module 'x'",
      '    at Module._resolveFilename (node:internal/modules/cjs/loader:1145:15)',
      `    at loadHandler (${orbitFile}:22:11)`,
      '    at Object.<anonymous> (/srv/h/handler.js:3:9)',
      '    at file:///srv/h/other.mjs:1:1',
    ].join('\n');
    expect(firstUserFrame(stack)).toEqual({ file: '/srv/h/handler.js', line: 3, column: 9 });
  });

  test('reads a frame without a function name, given as a file URL', () => {
    expect(firstUserFrame('Error: boom\n    at file:///srv/h/handler.mjs:2:7\n    at ModuleJob.run (node:internal/modules/esm/module_job:234:25)')).toEqual({
      file: '/srv/h/handler.mjs',
      line: 2,
      column: 7,
    });
  });
});

describe('describeLoadFailure', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'orbit-load-failure-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('an ES module syntax error without a location in its stack is located by node --check', () => {
    const file = join(dir, 'bad.mjs');
    writeFileSync(file, "export const handle = () => {\n  const y = 1;\n  return y +;\n};\n");
    const err = new SyntaxError("Unexpected token ';'");
    err.stack = "SyntaxError: Unexpected token ';'\n    at compileSourceTextModule (node:internal/modules/esm/utils:346:16)";
    expect(describeLoadFailure(file, err)).toBe(`syntax error at ${file}:3:13: Unexpected token ';'`);
  });

  test('a throw keeps only the first line of its message and names where it happened', () => {
    const err = new Error("Cannot find module 'x'\nRequire stack:\n- /srv/h/handler.js");
    err.stack = `Error: Cannot find module 'x'\n    at Module._resolveFilename (node:internal/modules/cjs/loader:1145:15)\n    at Object.<anonymous> (/srv/h/handler.js:1:11)`;
    expect(describeLoadFailure('/srv/h/handler.js', err)).toBe("Cannot find module 'x' (at /srv/h/handler.js:1:11)");
  });

  test('a non-Error thrown at import is described as itself', () => {
    expect(describeLoadFailure('/srv/h/handler.js', null)).toBe('null');
    expect(describeLoadFailure('/srv/h/handler.js', 'nope')).toBe('nope');
  });
});
