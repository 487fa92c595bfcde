/**
 * Guards for runs against an orbit that may be half-built (the steady and fill benchmarks
 * measure code that is still changing): a stuck publisher or a stop that never returns fails
 * the run with a message instead of hanging the whole bench.
 */

/**
 * Resolves or rejects as `work` does, but rejects once `count()` has not changed for `stallMs`,
 * or when `work` has taken longer than `limitMs` (progress that trickles, e.g. a few confirms a
 * second, is as useless to a benchmark as none).
 */
export function failOnStall<T>(work: Promise<T>, count: () => number, stallMs: number, what: string, limitMs = Infinity): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const started = Date.now();
    let last = count();
    let lastChange = started;
    const timer = setInterval(() => {
      const now = count();
      if (now !== last) {
        last = now;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > stallMs) {
        clearInterval(timer);
        reject(new Error(`${what}: no progress for ${Math.round(stallMs / 1000)} s (${now.toLocaleString('en-US')} done)`));
        return;
      }
      if (Date.now() - started > limitMs) {
        clearInterval(timer);
        reject(new Error(`${what}: not done after ${Math.round(limitMs / 1000)} s (${now.toLocaleString('en-US')} done)`));
      }
    }, 1000);
    timer.unref();
    work.then(
      (v) => {
        clearInterval(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearInterval(timer);
        reject(err as Error);
      },
    );
  });
}

/** Waits for `work` at most `ms` (a close or stop that hangs must not hang the cleanup after it); true when it finished. */
export async function atMost(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([work.then(() => true as const, () => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
