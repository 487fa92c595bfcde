/**
 * A message's generation: when it was first published, in epoch ms, made unique within this
 * process by a fraction (`OutgoingMessage.generation`). A cancel of an id drops the copies
 * whose generation is older than the cancel's (`message/tombstones.ts`), so a publish after a
 * cancel, or a replacement, runs while the copies before it do not.
 *
 * Wall-clock time, so generations from different machines compare as well as their clocks
 * agree (README, "Cancel and replace"). Never behind the clock: two calls in the same
 * millisecond differ by a thousandth of one, which only more than 1,000 publishes in one
 * millisecond could push ahead of the clock.
 */
let last = 0;

/** A generation later than every earlier one from this process and not before `now`. */
export function nextGeneration(now = Date.now()): number {
  last = Math.max(now, last + 0.001);
  return last;
}
