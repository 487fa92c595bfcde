/**
 * `orbit start` with a handler that cannot be loaded: it exits 2 (configuration, which the
 * systemd unit's RestartPreventExitStatus=2 does not restart) with one line on stderr
 * that says what is wrong and where. Handlers load before any connection is opened, so
 * the broker URL points nowhere and no broker is involved.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, runCli, type CliResult } from '../helpers/cli';

jest.setTimeout(30_000);

let dir: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'orbit-handler-load-'));
}, 180_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `source` as `name` (unless null) and runs `orbit start` with one lane using it. */
async function startWith(name: string, source: string | null): Promise<{ res: CliResult; file: string }> {
  const file = join(dir, name);
  if (source !== null) writeFileSync(file, source);
  const config = join(dir, `${name}.config.json`);
  writeFileSync(
    config,
    JSON.stringify({
      namespace: 'handler-load-never-connects',
      // Port 1: nothing listens. A handler failure must be reported before any connect.
      amqp: { url: 'amqp://guest:guest@127.0.0.1:1', reconnect: '500ms' },
      http: { port: 0 },
      log: { level: 'warn' },
      lanes: [{ name: 'a', handler: file }],
    }),
  );
  const res = await runCli(['start', '--config', config], { timeoutMs: 20_000 });
  return { res, file };
}

/** The whole of stderr is one line: `orbit: <message> [HANDLER_LOAD_FAILED]`. */
function oneLine(res: CliResult): string {
  const lines = res.stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^orbit: .* \[HANDLER_LOAD_FAILED\]$/);
  return lines[0]!;
}

test('a missing handler file exits 2', async () => {
  const { res, file } = await startWith('missing.js', null);
  expect(res.code).toBe(2);
  expect(oneLine(res)).toBe(`orbit: handler module not found: ${file} [HANDLER_LOAD_FAILED]`);
  // And one JSON log line on stdout, like every other daemon log, for the log pipeline.
  const logs = res.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(logs.filter((l) => l.level === 'fatal')).toEqual([
    expect.objectContaining({ service: 'orbit', msg: 'orbit start failed', code: 'HANDLER_LOAD_FAILED', err: `handler module not found: ${file}` }),
  ]);
});

test('a config error at start is a JSON log line too, naming the key', async () => {
  const config = join(dir, 'bad-unit.config.json');
  writeFileSync(config, JSON.stringify({ namespace: 'handler-load-never-connects', delay: { unit: '5x' }, lanes: [{ name: 'a' }] }));
  const res = await runCli(['start', '--config', config], { timeoutMs: 20_000 });
  expect(res.code).toBe(2);
  expect(res.stderr).toMatch(/^orbit: .*delay\.unit.*\[CONFIG_INVALID\]\n$/s);
  const fatal = res.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 'fatal');
  expect(fatal).toEqual([expect.objectContaining({ msg: 'orbit start failed', code: 'CONFIG_INVALID', path: 'delay.unit' })]);
});

test('a CommonJS handler that throws on import exits 2 naming the message and the line that threw', async () => {
  const { res, file } = await startWith('throws.js', "const ready = false;\nif (!ready) throw new Error('database URL not set');\n");
  expect(res.code).toBe(2);
  expect(oneLine(res)).toBe(`orbit: cannot load handler ${file}: database URL not set (at ${file}:2:19) [HANDLER_LOAD_FAILED]`);
});

test('an ES module handler that throws on import (top-level await) exits 2 naming the line', async () => {
  const { res, file } = await startWith('throws.mjs', "await Promise.resolve();\nthrow new Error('no config');\nexport const handle = () => {};\n");
  expect(res.code).toBe(2);
  expect(oneLine(res)).toBe(`orbit: cannot load handler ${file}: no config (at ${file}:2:7) [HANDLER_LOAD_FAILED]`);
});

test('a handler whose dependency is not installed exits 2 with the first line of the error', async () => {
  const { res, file } = await startWith('needs-dep.js', "const lib = require('orbit-test-not-installed');\nexports.handle = () => lib();\n");
  expect(res.code).toBe(2);
  // Node's message continues with a multi-line "Require stack": only its first line is kept.
  expect(oneLine(res)).toBe(`orbit: cannot load handler ${file}: Cannot find module 'orbit-test-not-installed' (at ${file}:1:13) [HANDLER_LOAD_FAILED]`);
});

test('a CommonJS syntax error exits 2 with file:line:column', async () => {
  const { res, file } = await startWith('syntax.js', 'exports.handle = async (message) => {\n  const n = message.runs +;\n};\n');
  expect(res.code).toBe(2);
  expect(oneLine(res)).toBe(`orbit: cannot load handler ${file}: syntax error at ${file}:2:27: Unexpected token ';' [HANDLER_LOAD_FAILED]`);
});

test('an ES module syntax error exits 2 with file:line:column', async () => {
  const { res, file } = await startWith('syntax.mjs', "import { done } from 'node:util';\n\nexport async function handle() {\n\treturn done(;\n}\n");
  expect(res.code).toBe(2);
  expect(oneLine(res)).toBe(`orbit: cannot load handler ${file}: syntax error at ${file}:4:14: Unexpected token ';' [HANDLER_LOAD_FAILED]`);
});

test('a syntax error in a module the handler requires names that module', async () => {
  writeFileSync(join(dir, 'broken-lib.js'), 'module.exports = {\n  a: 1\n  b: 2,\n};\n');
  const { res, file } = await startWith('uses-broken-lib.js', "const lib = require('./broken-lib.js');\nexports.handle = () => lib;\n");
  expect(res.code).toBe(2);
  expect(oneLine(res)).toBe(`orbit: cannot load handler ${file}: syntax error at ${join(dir, 'broken-lib.js')}:3:3: Unexpected identifier 'b' [HANDLER_LOAD_FAILED]`);
});

test('a handler that exports no function exits 2', async () => {
  const { res, file } = await startWith('no-export.js', 'exports.config = { retries: 3 };\n');
  expect(res.code).toBe(2);
  expect(oneLine(res)).toBe(`orbit: handler ${file} exports no function: export "handle" or a default function [HANDLER_LOAD_FAILED]`);
});
