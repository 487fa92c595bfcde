/** Waiting in tests: one `sleep` and one polling `waitFor` for every suite. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` every `everyMs` until it returns true.
 *
 * @returns how long it took, in ms (fault scenarios report recovery times with it)
 * @throws after `timeoutMs`, naming `what`
 */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what = 'condition', everyMs = 50): Promise<number> {
  const began = Date.now();
  while (!(await check())) {
    if (Date.now() - began > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
  return Date.now() - began;
}

/**
 * The least a wait of one `setTimeout(ms)` can measure, for asserting that something waited
 * out its timer. Node schedules a timer on libuv's monotonic clock in whole milliseconds from
 * when it is set, so it may fire up to 1 ms before `ms` have truly passed; `Date.now()` is
 * another clock in whole milliseconds, which can take another millisecond off a difference of
 * two readings (CI measured 99 for a 100 ms close timeout). The wall clock may also be slewed
 * (NTP, at most 500 ppm) against the monotonic one, which matters only for long timers.
 */
export function timerFloorMs(ms: number): number {
  return ms - 2 - Math.ceil(ms * 0.0005);
}
