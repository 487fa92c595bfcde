/**
 * Runs the real CLI (`dist/src/cli/main.js`) as a child process.
 *
 * The build is brought up to date once per test file: `npm run build` runs when main.js is
 * missing or older than any file under src/. Jest runs test files in parallel workers, so
 * the build is guarded by a lock directory (mkdir is atomic) shared by every worker; a
 * worker that waited for the lock checks the mtimes again and usually finds nothing to do.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { errnoCode } from '../../src/errors';

export const REPO_ROOT = resolve(__dirname, '..', '..');
export const CLI_MAIN = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** A build that holds the lock longer than this is presumed dead (its process crashed). */
const STALE_LOCK_MS = 180_000;
const LOCK_DIR = join(tmpdir(), `orbit-build-lock-${createHash('sha1').update(REPO_ROOT).digest('hex').slice(0, 12)}`);

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.isFile()) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function mtimeOrZero(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** True when dist/src/cli/main.js is missing or older than some file in src/. */
export function buildIsStale(): boolean {
  return mtimeOrZero(CLI_MAIN) < newestMtime(join(REPO_ROOT, 'src'));
}

function lockOwnerAlive(): boolean {
  try {
    const pid = Number(readFileSync(join(LOCK_DIR, 'pid'), 'utf8'));
    if (!Number.isInteger(pid) || pid <= 0) return true; // being written: assume alive
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}

async function acquireLock(): Promise<void> {
  const deadline = Date.now() + STALE_LOCK_MS + 30_000;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(join(LOCK_DIR, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
    const age = Date.now() - mtimeOrZero(LOCK_DIR);
    if (age > STALE_LOCK_MS || (age > 2000 && !lockOwnerAlive())) {
      rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`could not take the build lock ${LOCK_DIR}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function releaseLock(): void {
  rmSync(LOCK_DIR, { recursive: true, force: true });
}

let building: Promise<void> | undefined;

/** Brings dist/ up to date (at most once per test file; concurrent jest workers take turns). */
export function ensureBuilt(): Promise<void> {
  building ??= (async () => {
    if (!buildIsStale()) return;
    await acquireLock();
    try {
      if (!buildIsStale()) return; // another worker built it while we waited
      const startedAt = Date.now();
      const res = spawnSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 170_000 });
      if (res.status !== 0) {
        // tsc still emits on type errors (noEmitOnError is off); a type error in a file some
        // other engineer is editing should not stop a runtime test, a missing build should.
        const output = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
        if (mtimeOrZero(CLI_MAIN) < startedAt) throw new Error(`npm run build failed (status ${res.status}):\n${output}`);
        console.warn(`npm run build reported errors but emitted dist/ (status ${res.status}):\n${output.slice(0, 4000)}`);
      }
    } finally {
      releaseLock();
    }
  })();
  return building;
}

/** The environment for a child: this one without ORBIT_* variables, plus `env`. */
export function cliEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ORBIT_')) out[k] = v;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

export interface CliOptions {
  readonly cwd?: string;
  /** Added to (or, when undefined, removed from) the environment; ORBIT_* from the test process never leak in. */
  readonly env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed. Without it stdin is closed empty. */
  readonly input?: string;
  /** Kill the child (SIGKILL) after this long. @defaultValue 30 s */
  readonly timeoutMs?: number;
}

export interface CliResult {
  /** Exit code; null when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function spawnCli(args: readonly string[], options: CliOptions): ChildProcess {
  return spawn(process.execPath, [CLI_MAIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: cliEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs `orbit <args>` to completion. */
export async function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  await ensureBuilt();
  const child = spawnCli(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin!.on('error', () => undefined); // the child may exit before reading all input
  child.stdin!.end(options.input ?? '');
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise<CliResult>((resolvePromise, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** A parsed JSON log line (pino), or `{ raw }` for a line that is not JSON. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

/** A long-running CLI process such as `orbit start`. */
export class CliProcess {
  /** stdout lines, parsed as JSON where possible. */
  readonly lines: LogLine[] = [];
  stderr = '';
  private exit: CliResult | undefined;
  private readonly exited: Promise<CliResult>;
  private stdoutText = '';
  private readonly lineWaiters = new Set<() => void>();

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      this.stdoutText += `${line}\n`;
      let parsed: LogLine;
      try {
        const value: unknown = JSON.parse(line);
        parsed = typeof value === 'object' && value !== null ? (value as LogLine) : { raw: line };
      } catch {
        parsed = { raw: line };
      }
      this.lines.push(parsed);
      for (const wake of this.lineWaiters) wake();
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise<CliResult>((resolvePromise) => {
      child.on('close', (code, signal) => {
        this.exit = { code, signal, stdout: this.stdoutText, stderr: this.stderr };
        for (const wake of this.lineWaiters) wake();
        resolvePromise(this.exit);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exitResult(): CliResult | undefined {
    return this.exit;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    return this.exit === undefined && this.child.kill(signal);
  }

  /** Resolves with the exit; rejects after `timeoutMs` (the process is left running). */
  waitForExit(timeoutMs = 30_000): Promise<CliResult> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      this.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`process ${this.pid} did not exit within ${timeoutMs} ms\nstderr: ${this.stderr}`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Resolves with the first log line (already seen or to come) that matches. */
  waitForLine(match: (line: LogLine) => boolean, timeoutMs = 30_000, what = 'a log line'): Promise<LogLine> {
    return new Promise<LogLine>((resolvePromise, reject) => {
      const check = (): boolean => {
        const found = this.lines.find(match);
        if (found) {
          done();
          resolvePromise(found);
          return true;
        }
        if (this.exit) {
          done();
          reject(new Error(`process exited (${this.exit.code ?? this.exit.signal}) before ${what}\nstdout:\n${this.exit.stdout}\nstderr:\n${this.exit.stderr}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      const wake = (): void => void check();
      const done = (): void => {
        clearTimeout(timer);
        this.lineWaiters.delete(wake);
      };
      if (!check()) this.lineWaiters.add(wake);
    });
  }

  /** Log lines whose `msg` equals `msg`. */
  logged(msg: string): LogLine[] {
    return this.lines.filter((l) => l.msg === msg);
  }

  /** Ends the process if still running: SIGKILL, for test cleanup. */
  async destroy(): Promise<void> {
    if (this.exit) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Starts a long-running `orbit <args>` (e.g. `start`) and returns a handle to it. */
export async function startCli(args: readonly string[], options: Omit<CliOptions, 'input' | 'timeoutMs'> = {}): Promise<CliProcess> {
  await ensureBuilt();
  const child = spawnCli(args, options);
  child.stdin!.end();
  return new CliProcess(child);
}
