/**
 * Cleanups still owed, so an interrupted run (Ctrl-C) deletes what it declared. A contender
 * registers its cleanup as soon as it creates something on the broker, and unregisters once
 * the cleanup ran.
 */
const pending = new Set<() => Promise<void>>();

/** Registers `fn`; returns a function that runs it once and unregisters it. */
export function owe(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const run = () => {
    done ??= (async () => {
      try {
        await fn();
      } finally {
        pending.delete(run);
      }
    })();
    return done;
  };
  pending.add(run);
  return run;
}

/**
 * Runs every cleanup still owed (on SIGINT/SIGTERM), newest first: a consumer registered after
 * its namespace is stopped before the namespace is deleted, so it cannot re-declare a queue.
 */
export async function payAll(): Promise<void> {
  for (const run of [...pending].reverse()) await run().catch(() => undefined);
}

/** On SIGINT/SIGTERM: run what is owed, then exit 130. */
export function cleanUpOnSignal(): void {
  const stop = () => {
    process.stderr.write('[bench] interrupted: cleaning up\n');
    void payAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
