import { LADDER_HELD_MESSAGES, ladderBundlePrefetch } from '../../src/worker/lane-worker';

describe('ladderBundlePrefetch', () => {
  it('holds LADDER_HELD_MESSAGES logical messages in bundles of bundle.max', () => {
    expect(LADDER_HELD_MESSAGES).toBe(100_000);
    expect(ladderBundlePrefetch(200)).toBe(500);
    expect(ladderBundlePrefetch(100)).toBe(1000);
    expect(ladderBundlePrefetch(1)).toBe(100_000);
    expect(ladderBundlePrefetch(10_000)).toBe(10);
  });

  it('never lets a crash repeat more than the budget plus one bundle, for every bundle.max', () => {
    for (let max = 1; max <= 10_000; max++) {
      const prefetch = ladderBundlePrefetch(max);
      expect(Number.isSafeInteger(prefetch) && prefetch >= 1).toBe(true);
      // Full bundles: at least the budget, and less than one bundle beyond it.
      expect(prefetch * max).toBeGreaterThanOrEqual(LADDER_HELD_MESSAGES);
      expect(prefetch * max).toBeLessThan(LADDER_HELD_MESSAGES + max);
    }
  });
});
