import { TokenBucket } from '../../src/worker/token-bucket';

/** A clock the test moves by hand. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('TokenBucket', () => {
  it('starts full at burst, and hands out exactly burst tokens with no time passing', () => {
    const c = clock();
    const bucket = new TokenBucket(10, 5, c.now);
    expect(bucket.available()).toBe(5);
    for (let i = 0; i < 5; i++) expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    expect(bucket.available()).toBe(0);
  });

  it('refills at rate tokens a second, fractions included', () => {
    const c = clock();
    const bucket = new TokenBucket(10, 5, c.now);
    while (bucket.tryTake());
    c.advance(99);
    expect(bucket.available()).toBe(0); // 0.99 tokens
    c.advance(1);
    expect(bucket.available()).toBe(1); // 1.0
    c.advance(250);
    expect(bucket.available()).toBe(3); // 3.5: whole tokens only
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false); // 0.5 left
    c.advance(50);
    expect(bucket.tryTake()).toBe(true); // the half token was kept: 0.5 + 0.5
  });

  it('caps at burst however long it rests', () => {
    const c = clock();
    const bucket = new TokenBucket(100, 7, c.now);
    while (bucket.tryTake());
    c.advance(3_600_000);
    expect(bucket.available()).toBe(7);
    for (let i = 0; i < 7; i++) expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
  });

  it('holds its rate over a long run of polling: rate × seconds + burst tokens, no more', () => {
    const c = clock();
    const bucket = new TokenBucket(50, 50, c.now);
    let taken = 0;
    // 10 s, polled every 7 ms (not a divisor of the token period, so fractions carry).
    for (let t = 0; t <= 10_000; t += 7) {
      while (bucket.tryTake()) taken++;
      c.advance(7);
    }
    expect(taken).toBeGreaterThanOrEqual(50 + 50 * 10 - 1);
    expect(taken).toBeLessThanOrEqual(50 + 50 * 10 + 1);
  });

  it('waitMs: 0 while a token is there, else the time to the next whole token', () => {
    const c = clock();
    const bucket = new TokenBucket(4, 2, c.now); // a token every 250 ms
    expect(bucket.waitMs()).toBe(0);
    bucket.tryTake();
    expect(bucket.waitMs()).toBe(0);
    bucket.tryTake();
    expect(bucket.waitMs()).toBe(250);
    c.advance(100);
    expect(bucket.waitMs()).toBe(150);
    c.advance(150);
    expect(bucket.waitMs()).toBe(0);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.waitMs()).toBe(250);
  });

  it('waitMs never promises a token too soon: after waiting it out, tryTake succeeds', () => {
    // Odd rates and steps, so the refill arithmetic carries binary fractions.
    for (const rate of [3, 7, 13, 50, 333]) {
      const c = clock();
      const bucket = new TokenBucket(rate, 1, c.now);
      for (let i = 0; i < 200; i++) {
        bucket.tryTake();
        c.advance((i * 37) % 11); // some time passes, less than a token's worth or not
        const wait = bucket.waitMs();
        const ideal = Math.max(0, 1000 / rate - ((i * 37) % 11));
        // ceil of the exact value, give or take 1 ms of floating-point rounding
        expect(Math.abs(wait - Math.ceil(ideal))).toBeLessThanOrEqual(1);
        c.advance(wait);
        expect({ rate, i, wait, taken: bucket.tryTake() }).toEqual({ rate, i, wait, taken: true });
      }
    }
  });

  it('waitMs does not consume, and agrees with tryTake', () => {
    const c = clock();
    const bucket = new TokenBucket(3, 1, c.now);
    bucket.tryTake();
    const wait = bucket.waitMs();
    expect(wait).toBe(334); // ceil(1000 / 3)
    c.advance(wait - 1);
    expect(bucket.tryTake()).toBe(false);
    c.advance(1);
    expect(bucket.tryTake()).toBe(true);
  });

  it('reads the clock from construction, not from the first call', () => {
    const c = clock();
    const bucket = new TokenBucket(10, 10, c.now);
    c.advance(5000);
    // Full from the start and capped: resting before the first use adds nothing.
    expect(bucket.available()).toBe(10);
  });
});
