import type { BackoffConfig, Jitter } from '../../src/config/types';
import { backoffBounds, backoffDelay, baseBackoff } from '../../src/delay/backoff';

function policy(overrides: Partial<BackoffConfig> = {}): BackoffConfig {
  return { initialMs: 1000, factor: 2, maxMs: 3_600_000, jitter: 'full', ...overrides };
}

describe('baseBackoff', () => {
  it('grows as initial × factor^(attempt − 1)', () => {
    const b = policy();
    expect([1, 2, 3, 4, 5, 6].map((n) => baseBackoff(n, b))).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000]);
    const tripled = policy({ initialMs: 500, factor: 3 });
    expect([1, 2, 3, 4].map((n) => baseBackoff(n, tripled))).toEqual([500, 1500, 4500, 13_500]);
  });

  it('stays at initial with factor 1', () => {
    const b = policy({ initialMs: 750, factor: 1 });
    for (let n = 1; n <= 50; n++) expect(baseBackoff(n, b)).toBe(750);
  });

  it('treats attempt ≤ 1 as the first failure', () => {
    expect(baseBackoff(0, policy())).toBe(1000);
    expect(baseBackoff(1, policy())).toBe(1000);
  });

  it('caps at max, also when the growth overflows to Infinity', () => {
    const b = policy({ maxMs: 10_000 });
    expect(baseBackoff(4, b)).toBe(8000);
    expect(baseBackoff(5, b)).toBe(10_000);
    expect(baseBackoff(6, b)).toBe(10_000);
    expect(baseBackoff(2000, b)).toBe(10_000); // 2^1999 is Infinity
    expect(baseBackoff(1, policy({ initialMs: 10_000, maxMs: 10_000 }))).toBe(10_000);
  });

  it('is a whole number of ms with a fractional factor', () => {
    const b = policy({ factor: 1.5 });
    expect([1, 2, 3, 4, 5].map((n) => baseBackoff(n, b))).toEqual([1000, 1500, 2250, 3375, 5063]);
    for (let n = 1; n <= 30; n++) expect(Number.isInteger(baseBackoff(n, policy({ factor: 1.1 })))).toBe(true);
  });
});

describe('backoffBounds', () => {
  it('full jitter: [0, d]', () => {
    expect(backoffBounds(1, policy({ jitter: 'full' }))).toEqual([0, 1000]);
    expect(backoffBounds(3, policy({ jitter: 'full' }))).toEqual([0, 4000]);
  });

  it('equal jitter: [d/2, d]', () => {
    expect(backoffBounds(1, policy({ jitter: 'equal' }))).toEqual([500, 1000]);
    expect(backoffBounds(3, policy({ jitter: 'equal' }))).toEqual([2000, 4000]);
    expect(backoffBounds(1, policy({ jitter: 'equal', initialMs: 1001 }))).toEqual([501, 1001]);
  });

  it('no jitter: [d, d]', () => {
    expect(backoffBounds(1, policy({ jitter: 'none' }))).toEqual([1000, 1000]);
    expect(backoffBounds(4, policy({ jitter: 'none' }))).toEqual([8000, 8000]);
  });

  it('the cap bounds the upper end', () => {
    expect(backoffBounds(30, policy({ jitter: 'equal', maxMs: 60_000 }))).toEqual([30_000, 60_000]);
  });
});

describe('backoffDelay', () => {
  const jitters: Jitter[] = ['full', 'equal', 'none'];
  const policies: BackoffConfig[] = jitters.flatMap((jitter) => [
    policy({ jitter }),
    policy({ jitter, factor: 1.5 }),
    policy({ jitter, initialMs: 7, factor: 1.37, maxMs: 100_003 }),
    policy({ jitter, initialMs: 1, factor: 10, maxMs: 10_000 }),
    policy({ jitter, initialMs: 0 }),
  ]);

  it('with injected random 0 / 0.5 / 0.999 lands at the low end, the middle and the high end', () => {
    const full = policy({ jitter: 'full' });
    expect(backoffDelay(3, full, () => 0)).toBe(0);
    expect(backoffDelay(3, full, () => 0.5)).toBe(2000);
    expect(backoffDelay(3, full, () => 0.999)).toBe(3996);
    const equal = policy({ jitter: 'equal' });
    expect(backoffDelay(3, equal, () => 0)).toBe(2000);
    expect(backoffDelay(3, equal, () => 0.5)).toBe(3000);
    expect(backoffDelay(3, equal, () => 0.999)).toBe(3998);
    const none = policy({ jitter: 'none' });
    for (const r of [0, 0.5, 0.999]) expect(backoffDelay(3, none, () => r)).toBe(4000);
  });

  it.each([0, 0.5, 0.999, 0.9999999999])('stays within backoffBounds with random = %p for every policy and attempt', (r) => {
    for (const b of policies) {
      for (let attempt = 1; attempt <= 40; attempt++) {
        const [min, max] = backoffBounds(attempt, b);
        const d = backoffDelay(attempt, b, () => r);
        expect(Number.isInteger(d)).toBe(true);
        expect(d).toBeGreaterThanOrEqual(min);
        expect(d).toBeLessThanOrEqual(max);
      }
    }
  });

  it('10,000 Math.random draws all stay within bounds', () => {
    let outside = 0;
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const b = policies[i % policies.length]!;
      const attempt = 1 + (i % 25);
      const [min, max] = backoffBounds(attempt, b);
      const d = backoffDelay(attempt, b);
      if (!(Number.isInteger(d) && d >= min && d <= max)) outside++;
      if (b === policies[0] && attempt === 11) seen.add(d); // full jitter over [0, 1024000]
    }
    expect(outside).toBe(0);
    // Really random: the same full-jitter attempt does not keep producing one value.
    expect(seen.size).toBeGreaterThan(1);
  });

  it('uses Math.random by default', () => {
    const spy = jest.spyOn(Math, 'random').mockReturnValue(0.25);
    try {
      expect(backoffDelay(3, policy({ jitter: 'full' }))).toBe(1000);
      expect(spy).toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });
});
