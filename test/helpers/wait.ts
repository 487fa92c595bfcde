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
