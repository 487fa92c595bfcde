/**
 * `work`, or the error `timedOut()` makes once `ms` have passed, whichever comes first. The
 * timer is cleared either way; `work` goes on and is not cancelled (a caller that may abandon
 * it keeps its rejection handled).
 */
export async function within<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timedOut()), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
