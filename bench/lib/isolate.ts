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
  let running = false;
  const answer = (msg: { ok: true; value: O } | { ok: false; error: string }, code: number) => {
    running = false;
    process.send!(msg, () => process.exit(code));
  };
  const describe = (err: unknown) => (err instanceof Error ? (err.stack ?? err.message) : String(err));
  const fail = (err: unknown, what?: string) => answer({ ok: false, error: what === undefined ? describe(err) : `${what}: ${describe(err)}` }, 1);
  // A child must never leave its parent with a bare "exited without an answer": an error no
  // one awaited (an amqplib 'error' event, a rejected promise) becomes the run's error, and a
  // run whose event loop empties (it awaits a promise nothing will settle) says so on exit.
  process.once('uncaughtException', (err) => fail(err, 'uncaught exception'));
  process.once('unhandledRejection', (err) => fail(err, 'unhandled rejection'));
  process.once('exit', (code) => {
    if (running) process.stderr.write(`[bench] child ${process.pid} exiting (code ${code}) while its run was pending: nothing left to wake it (a promise no event will settle)\n`);
  });
  process.once('message', (input: I) => {
    running = true;
    run(input).then(
      (value) => answer({ ok: true, value }, 0),
      (err: unknown) => fail(err),
    );
  });
}
