/**
 * The delay ladder's arithmetic (src/delay/ladder.ts), proved over random delays: a message
 * is never routed to arrive before it is due, never later than due + τ × delay + unit (+
 * linger for a bundle's wait), and a bundle always has at least its linger to fill.
 */
import { allowedLatenessMs, holdMs, ladderRungs, rungExpiresMs, rungIndex, rungRenewMs } from '../../src/delay/ladder';
import { ladderOf, routeDelay } from '../../src/delay/routing';
import { names } from '../../src/naming/names';
import { mulberry32 as prng } from '../helpers/prng';

const n = names('p');

describe('ladderRungs', () => {
  test('every whole unit up to about 2/τ is a rung, then they grow by at most 1 + τ/2, ending at the longest delay', () => {
    const rungs = ladderRungs(0.02, 2 ** 28 - 1);
    expect(rungs.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(rungs[rungs.length - 1]).toBe(2 ** 28 - 1);
    for (let i = 1; i < rungs.length; i++) {
      expect(rungs[i]!).toBeGreaterThan(rungs[i - 1]!);
      expect(rungs[i]!).toBeLessThanOrEqual(Math.max(rungs[i - 1]! + 1, rungs[i - 1]! * 1.01));
    }
    // About ln 2 / ln 1.01 ≈ 70 per octave above the whole units: 100 + 70 × log2(2^28 / 100).
    expect(rungs.length).toBeGreaterThan(1400);
    expect(rungs.length).toBeLessThan(1700);
  });

  test('refuses a tolerance of 0 and a maximum below one unit', () => {
    expect(() => ladderRungs(0, 100)).toThrow(RangeError);
    expect(() => ladderRungs(0.02, 0)).toThrow(RangeError);
  });

  test('rungIndex finds the smallest rung at or above, and -1 past the top', () => {
    const rungs = [1, 2, 3, 5, 8];
    expect([1, 2, 3, 4, 5, 6, 8, 9].map((u) => rungIndex(rungs, u))).toEqual([0, 1, 2, 3, 3, 4, 4, -1]);
  });
});

describe.each([
  [0.02, 1000],
  [0.05, 1],
  [0.01, 60_000],
  [0.5, 10],
])('tolerance %p, unit %p ms: property over 20,000 random delays', (tolerance, unitMs) => {
  const levels = Math.min(28, Math.floor(Math.log2(315_360_000_000 / unitMs + 1)));
  const delay = { unitMs, levels, tolerance };
  const max = (2 ** levels - 1) * unitMs;
  const random = prng(Math.round(tolerance * 1000) + unitMs);

  // Checked in plain code and asserted once per test: 20,000 expect() calls would take a minute.
  test('routed to one rung: never early, late by less than max(unit, τ/2 × delay)', () => {
    const wrong: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      // Log-uniform over the whole range, plus exact multiples of the unit and tiny delays.
      const d = i % 10 === 0 ? Math.ceil(random() * 200) * unitMs : Math.floor(max ** random());
      if (d === 0) continue;
      const route = routeDelay(d, 'lane', delay, n);
      const late = route.delayMs - d;
      if (route.hops !== 1 || route.exchange !== '' || route.rung?.queue !== route.routingKey || route.rung.ttlMs !== route.delayMs) wrong.push(`${d}: route ${JSON.stringify(route)}`);
      if (late < 0) wrong.push(`${d}: early by ${-late} ms`);
      if (late >= Math.max(unitMs, (tolerance / 2) * d)) wrong.push(`${d}: late by ${late} ms`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    const sample = routeDelay(3 * unitMs + 1, 'lane', delay, n);
    expect(sample.routingKey).toBe(n.rung(sample.delayMs));
    expect(sample.cc).toEqual([n.toDestination('lane')]);
  });

  test('a bundled message holds at least its linger, and rung + hold stays within due + τ × delay + unit + linger', () => {
    const wrong: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const d = 1 + Math.floor((max - 1) * random() ** 3);
      const linger = [0, 100, 5000][i % 3]!;
      const rungMs = routeDelay(d, 'lane', delay, n).delayMs;
      const hold = holdMs(d, rungMs, tolerance, unitMs, linger);
      if (hold < linger) wrong.push(`${d}: hold ${hold} below linger ${linger}`);
      // Sent at the latest after `hold`, it arrives rungMs later; due is d after the publish.
      if (hold + rungMs - d > allowedLatenessMs(d, tolerance, unitMs, linger)) wrong.push(`${d}: ${hold + rungMs - d} ms late`);
      // Half the tolerance is left for the wait (less a millisecond of rounding).
      if (hold < linger + Math.floor((tolerance / 2) * d) - 1) wrong.push(`${d}: hold ${hold} below half the tolerance`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });
});

test('a delay that rounds to 0 goes straight to the deliver exchange, by the destination key', () => {
  expect(routeDelay(0, 'a~2', { unitMs: 1000, levels: 28, tolerance: 0.02 }, n)).toEqual({
    exchange: n.deliver,
    routingKey: n.toDestination('a~2'),
    delayMs: 0,
    hops: 0,
  });
});

test('tolerance 0 keeps the binary levels', () => {
  const route = routeDelay(5000, 'a', { unitMs: 1000, levels: 8, tolerance: 0 }, n);
  expect(route).toMatchObject({ exchange: n.delayLevel(2), routingKey: '0.0.0.0.0.1.0.1.a', hops: 2 });
});

test('ladders are built once per tolerance and levels', () => {
  expect(ladderOf(0.02, 20)).toBe(ladderOf(0.02, 20));
});

describe('rung names and leases', () => {
  test('a rung is named by its TTL, read back, and never ends in a word a lane could bind', () => {
    expect(n.rung(5_400_000)).toBe('p.wait:1h30m');
    expect(n.rungTtlOf('p.wait:1h30m')).toBe(5_400_000);
    expect(n.rungTtlOf('p.delay.3')).toBeUndefined();
    expect(n.rungTtlOf('q.wait:1h')).toBeUndefined();
    const last = n.rung(1234).split('.').pop()!;
    expect(last).not.toMatch(/^[A-Za-z0-9_-]+$/);
  });

  test('a publisher renews a rung while every message it sent expires at least 30 min before the rung could', () => {
    for (const ttl of [1, 1000, 60_000, 3_600_000, 86_400_000, 315_360_000_000]) {
      // Published just before a renewal is due: it expires TTL later.
      const lastPublishAfterDeclare = rungRenewMs(ttl);
      const margin = rungExpiresMs(ttl) - (lastPublishAfterDeclare + ttl);
      expect(margin).toBeGreaterThanOrEqual(30 * 60_000);
    }
  });
});

test('on quorum delay queues, priorities 5 and above wait in rungs of their own (4.x serves and expires them first)', () => {
  const quorum = { unitMs: 1000, levels: 28, tolerance: 0.02, queueType: 'quorum' as const };
  expect(routeDelay(60_000, 'a', quorum, n, 4).routingKey).toBe('p.wait:1m');
  expect(routeDelay(60_000, 'a', quorum, n, 5).routingKey).toBe('p.wait-high:1m');
  expect(n.rungTtlOf('p.wait-high:1m')).toBe(60_000);
  expect(routeDelay(60_000, 'a', { ...quorum, queueType: 'classic' }, n, 9).routingKey).toBe('p.wait:1m');
});
