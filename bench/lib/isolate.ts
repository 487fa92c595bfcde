import { fork, type Serializable } from 'node:child_process';
import { cleanUpOnSignal } from './cleanup';

/**
 * Runs one job in a fresh `node` child process and returns its answer. Benchmarks use it so
 * contenders never share a process: one run's heap, timers, JIT state and leftover handles
 * never tax the next. The child is a script that calls `serveJob` (below).
 */
export function runInChild<I extends Serializable, O>(script: string, input: I): Promise<O> {
  return new Promise<O>((resolve, reject) => {
    // Inherits stdio (progress on stderr) and execArgv (so `node --cpu-prof` profiles children too).
    const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let answered = false;
    child.once('message', (msg: { ok: true; value: O } | { ok: false; error: string }) => {
      answered = true;
      if (msg.ok) resolve(msg.value);
      else reject(new Error(msg.error));
    });
    child.once('error', (err) => {
      if (!answered) reject(err);
    });
    child.once('exit', (code, signal) => {
      if (!answered) reject(new Error(`benchmark child exited (${signal ?? `code ${code}`}) without an answer`));
    });
    child.send(input);
  });
}

/**
 * The child side: takes one job from the parent, answers with its result (or its error) and
 * exits. A run interrupted with Ctrl-C still deletes what it declared (lib/cleanup.ts).
 */
export function serveJob<I, O>(run: (input: I) => Promise<O>): void {
  cleanUpOnSignal();
  process.once('message', (input: I) => {
    run(input).then(
      (value) => process.send!({ ok: true, value }, () => process.exit(0)),
      (err: unknown) =>
        process.send!({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
    );
  });
}
