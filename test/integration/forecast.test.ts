/**
 * The forecast of `orbit stats` against a real broker: 2,000 messages published with delays
 * spread evenly over 2 hours (a seeded PRNG, so the delays — and with them the truth — are
 * known), then the forecast compared with how many of them fall due within each horizon,
 * counted from the delays (no waiting).
 *
 * The state is a fresh fill, the case the model reads high (src/stats/forecast.ts): each
 * message still has nearly all of its level's TTL ahead. test/unit/forecast.test.ts bounds that
 * at 2 × for an even spread; with 2,000 fixed delays rather than an infinite spread, the levels
 * hold a few per cent more or less than their share. So the bounds: the hour within [0.95,
 * 2.1] × the truth (measured 1.44 ×, far from either edge: the 2 h spread ends inside level 12,
 * whose head is all the hour takes of it), the day exact (every window of 14 levels, 2^15 − 1 s
 * ≈ 9.1 h, is inside it). The 1-minute horizon holds ~17 messages: too few to bound its ratio;
 * it is checked against the pure forecast of the same depths only.
 */
import { mulberry32 } from '../helpers/prng';
import type { BrokerSession } from '../../src/publish/session';
import { silentLogger } from '../../src/logging/logger';
import { Scheduler } from '../../src/publish/scheduler';
import { collectStats, type StatsSnapshot } from '../../src/stats/collect';
import { forecast, HORIZONS_MS } from '../../src/stats/forecast';
import { deleteNamespace, randomNamespace, testConfig } from '../helpers/broker';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const N = 2000;
const SPREAD_MS = 2 * 3_600_000;
const LEVELS = 14;

let ns: string;
let scheduler: Scheduler | undefined;

afterAll(async () => {
  await scheduler?.close();
  if (ns) await deleteNamespace(ns);
});

test('2,000 delays spread evenly over 2 h: the forecast reads the hour at most ~2 × high and the day exactly', async () => {
  ns = randomNamespace('forecast');
  const config = testConfig(ns, { delay: { unit: '1s', levels: LEVELS, tolerance: 0 }, lanes: [{ name: 'a' }] });
  scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
  const session: BrokerSession = await scheduler.connect();

  const random = mulberry32(15);
  // Whole seconds, so the level each message enters follows from its delay exactly.
  const delays = Array.from({ length: N }, () => Math.floor(random() * (SPREAD_MS / 1000)) * 1000);
  const publishedAt = Date.now();
  await Promise.all(delays.map((delay, i) => scheduler!.publish('a', { i }, { delay })));

  let s!: StatsSnapshot;
  await waitFor(
    async () => {
      s = await collectStats(session, config);
      return s.lanes.reduce((n, l) => n + l.ready, 0) + s.levels.reduce((n, l) => n + l.messages, 0) === N;
    },
    10_000,
    `all ${N} messages counted`,
  );
  const elapsed = Date.now() - publishedAt;
  // Level 6 and up (TTL ≥ 64 s) still hold exactly what entered them: the delays whose highest bit is theirs.
  expect(elapsed).toBeLessThan(60_000);
  for (const l of s.levels.filter((q) => (q.level ?? 0) >= 6)) {
    const entered = delays.filter((d) => Math.floor(Math.log2(d / 1000)) === l.level).length;
    expect([l.level, l.messages]).toEqual([l.level, entered]);
  }

  const ready = s.lanes.reduce((n, l) => n + l.ready, 0);
  expect(s.forecast).toEqual(forecast({ readyNow: ready, unitMs: 1000, levels: s.levels }));
  const truth = (horizonMs: number): number => delays.filter((d) => d - elapsed <= horizonMs).length;
  const hour = truth(HORIZONS_MS.hour);
  expect(hour).toBeGreaterThan(900);
  expect(s.forecast.hour / hour).toBeGreaterThan(0.95);
  expect(s.forecast.hour / hour).toBeLessThan(2.1);
  expect(s.forecast.day).toBe(N);
  expect(truth(HORIZONS_MS.day)).toBe(N);
});
