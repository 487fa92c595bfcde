/** What {@link answeredWithin} resolves with when the work did not settle in time. */
export const UNANSWERED: unique symbol = Symbol('unanswered');

/**
 * `work`'s result, or {@link UNANSWERED} once `ms` have passed without it; rejects as `work`
 * does when it fails in time. `work` goes on and is not cancelled: its later rejection is
 * handled here, so a caller may abandon it (a broker that never answers a call leaves its
 * promise pending for good). The timer is cleared either way.
 */
export async function answeredWithin<T>(work: Promise<T>, ms: number): Promise<T | typeof UNANSWERED> {
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<typeof UNANSWERED>((resolve) => {
        timer = setTimeout(() => resolve(UNANSWERED), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `work`, or the error `timedOut()` makes once `ms` have passed, whichever comes first
 * ({@link answeredWithin}, for callers that treat the wait running out as a failure).
 */
export async function within<T>(work: Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  const result = await answeredWithin(work, ms);
  if (result === UNANSWERED) throw timedOut();
  return result;
}
