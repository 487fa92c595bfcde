import { LADDER_HELD_MESSAGES, ladderBundlePrefetch, lanePrefetch } from '../../src/worker/lane-worker';

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

describe('lanePrefetch', () => {
  it('is the concurrency on an unbundled lane, whatever the layout', () => {
    expect(lanePrefetch({ concurrency: 100, bundle: { max: 1 } }, 0)).toBe(100);
    expect(lanePrefetch({ concurrency: 100, bundle: { max: 1 } }, 0.02)).toBe(100);
  });

  it('holds the concurrency twice over in bundles on the binary levels', () => {
    expect(lanePrefetch({ concurrency: 100, bundle: { max: 50 } }, 0)).toBe(4);
    expect(lanePrefetch({ concurrency: 101, bundle: { max: 50 } }, 0)).toBe(6);
  });

  it('holds LADDER_HELD_MESSAGES in bundles on the ladder, or the concurrency twice over when that is more', () => {
    expect(lanePrefetch({ concurrency: 100, bundle: { max: 200 } }, 0.02)).toBe(500);
    expect(lanePrefetch({ concurrency: 100, bundle: { max: 50 } }, 0.02)).toBe(2000);
    expect(lanePrefetch({ concurrency: 200_000, bundle: { max: 200 } }, 0.02)).toBe(2000);
  });
});
