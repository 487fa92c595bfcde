import { spawnSync } from 'node:child_process';
import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../errors';

/**
 * Says in one line why a handler module did not load, with the file:line:column to look
 * at. Runs once per failed start, never on the message path, so it may spawn a process.
 */

/** A place in a source file, 1-based. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/** orbit's own modules: a stack frame in them is where orbit loaded the handler, not the fault. */
const ORBIT_ROOT = resolve(__dirname, '..') + sep;

/**
 * What went wrong, as one line: a syntax error names where it is; anything else thrown
 * while loading names the first frame outside Node and orbit (the handler's line that
 * threw, or that required a missing module).
 */
export function describeLoadFailure(path: string, err: unknown): string {
  const message = firstLine(errorMessage(err));
  const stack = err instanceof Error && typeof err.stack === 'string' ? err.stack : '';
  const syntaxAt = err instanceof SyntaxError ? (decoratedLocation(stack) ?? checkSyntax(path)) : undefined;
  if (syntaxAt) return `syntax error at ${formatLocation(syntaxAt)}: ${message}`;
  const thrownAt = firstUserFrame(stack);
  return thrownAt ? `${message} (at ${formatLocation(thrownAt)})` : message;
}

export function formatLocation(at: SourceLocation): string {
  return `${at.file}:${at.line}:${at.column}`;
}

/**
 * The location Node prints above a SyntaxError: `file:line`, the source line, and a caret
 * line whose indent (tabs kept as tabs) ends at the column. `require` puts it at the top of
 * a CommonJS syntax error's stack; ES module syntax errors (through `require(esm)` or
 * `import()`) carry none on Node 20, and `node --check` prints it on stderr.
 */
export function decoratedLocation(text: string): SourceLocation | undefined {
  const m = /^\s*(\S.*?):(\d+)\r?\n.*\r?\n([ \t]*)\^/.exec(text);
  if (!m) return undefined;
  return { file: toPath(m[1]!), line: Number(m[2]), column: m[3]!.length + 1 };
}

/**
 * Asks Node itself where an ES module's syntax error is: `node --check` parses the file
 * (as the same module type `import` would) without running any of it. Only the handler
 * file is parsed; a syntax error in an ES module it imports stays without a location.
 */
function checkSyntax(path: string): SourceLocation | undefined {
  const res = spawnSync(process.execPath, ['--check', path], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'ignore', 'pipe'] });
  return res.status === 0 || typeof res.stderr !== 'string' ? undefined : decoratedLocation(res.stderr);
}

/** The first `at …(file:line:column)` frame that is neither Node's internals nor orbit's own. */
export function firstUserFrame(stack: string): SourceLocation | undefined {
  for (const line of stack.split('\n')) {
    const m = /^\s+at (?:.*? \()?(.+?):(\d+):(\d+)\)?$/.exec(line);
    if (!m || m[1]!.startsWith('node:')) continue;
    const file = toPath(m[1]!);
    if (file.startsWith(ORBIT_ROOT)) continue;
    return { file, line: Number(m[2]), column: Number(m[3]) };
  }
  return undefined;
}

function toPath(fileOrUrl: string): string {
  if (!fileOrUrl.startsWith('file://')) return fileOrUrl;
  try {
    return fileURLToPath(fileOrUrl);
  } catch {
    return fileOrUrl;
  }
}

/** Node's "Cannot find module" adds a multi-line require stack; the first line says it. */
function firstLine(text: string): string {
  const nl = text.indexOf('\n');
  return nl < 0 ? text : text.slice(0, nl);
}
