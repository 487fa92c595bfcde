/**
 * `lanes[].tolerance`: a lane on the ladder may take a ladder of its own. Its delays round up
 * to that ladder's rungs (queues named by TTL, shared by every ladder that has the TTL), its
 * messages carry that tolerance's bound, and everything that lists the ladder's queues
 * (discovery, stats, the file-handle check) lists every lane's. Without a broker.
 */
import type { ConfirmedPublisher } from '../../src/amqp/confirmed-publisher';
import { allowedLatenessMs, ladderRungs, rungIndex } from '../../src/delay/ladder';
import { delayOfLane, ladderOf, ladderTolerances, laddersOf } from '../../src/delay/routing';
import { configLongestHopMs, longestHopMs } from '../../src/delay/waypoints';
import { HEADER } from '../../src/message/headers';
import { names } from '../../src/naming/names';
import { MessagePublisher } from '../../src/publish/message-publisher';
import { ladderQueuesInSpan } from '../../src/topology/broker-capacity';
import { ladderQueues } from '../../src/topology/build';
import { testConfig } from '../helpers/broker';

const NS = 'unit-lane-tol';
const n = names(NS);
const config = testConfig(NS, {
  delay: { unit: '1s', tolerance: '2%', levels: 17 },
  lanes: [{ name: 'fine' }, { name: 'coarse', tolerance: '20%' }],
});

/** The rung TTL (ms) a delay rounds up to on the ladder of `tolerance`. */
function rungMs(delayMs: number, tolerance: number): number {
  const ladder = ladderOf(tolerance, 17);
  return ladder[rungIndex(ladder, Math.ceil(delayMs / 1000))]! * 1000;
}

test('each lane rounds up to the rungs of its own ladder and carries its own bound', async () => {
  const sent: { routingKey: string; headers: Record<string, unknown> }[] = [];
  const fake = {
    publish(_e: string, routingKey: string, _b: Buffer, options: { headers: Record<string, unknown> }): Promise<void> {
      sent.push({ routingKey, headers: options.headers });
      return Promise.resolve();
    },
  } as unknown as ConfirmedPublisher;
  const mp = new MessagePublisher(fake, n, config.delay, config.lanes, { ensure: () => undefined, forget: () => undefined });
  const delay = 3_700_000; // about an hour: the two ladders round it differently
  for (const lane of ['fine', 'coarse']) {
    const now = Date.now();
    await mp.schedule({ id: lane, lane, body: Buffer.from('{}'), priority: 0, dueAt: now + delay, delayMs: delay, runs: 0, attempt: 0, generation: 0, headers: {} });
  }
  expect(sent.map((s) => s.routingKey)).toEqual([n.rung(rungMs(delay, 0.02)), n.rung(rungMs(delay, 0.2))]);
  expect(rungMs(delay, 0.2)).not.toBe(rungMs(delay, 0.02));
  // Never early, and within each lane's own rounding (half its tolerance).
  expect(rungMs(delay, 0.2)).toBeGreaterThanOrEqual(delay);
  expect(rungMs(delay, 0.2) - delay).toBeLessThanOrEqual(0.1 * delay);
  expect(sent.map((s) => s.headers[HEADER.allowed])).toEqual([allowedLatenessMs(delay, 0.02, 1000), allowedLatenessMs(delay, 0.2, 1000)]);
});

test('the queues of every lane ladder are listed once each, and the file-handle estimate counts them all', () => {
  expect(ladderTolerances(config)).toEqual([0.02, 0.2]);
  const union = laddersOf([0.02, 0.2], 17);
  expect(new Set(union).size).toBe(union.length);
  expect([...union].sort((a, b) => a - b)).toEqual(union);
  for (const r of [...ladderOf(0.02, 17), ...ladderOf(0.2, 17)]) expect(union).toContain(r);
  const queues = ladderQueues(config);
  // On quorum rungs each TTL twice, for normal and high priorities.
  expect(queues.length).toBe((config.delay.queueType === 'quorum' ? 2 : 1) * union.length);
  expect(queues.map((q) => q.queue)).toContain(n.rung(rungMs(3_700_000, 0.2)));
  expect(ladderQueuesInSpan(config.delay, config.lanes)).toBeGreaterThan(ladderQueuesInSpan(config.delay));
  expect(ladderQueuesInSpan(config.delay, config.lanes)).toBeLessThan(ladderQueuesInSpan(config.delay) + ladderRungs(0.2, 86_400).length);
});

test('the longest hop is the largest tolerance’s, so it serves every lane', () => {
  expect(configLongestHopMs(config)).toBe(longestHopMs(config.cancel.retentionMs, 0.2));
  expect(configLongestHopMs(config)).toBeLessThan(longestHopMs(config.cancel.retentionMs, 0.02));
});

test('the namespace decides the layout: a lane tolerance counts only on the ladder, and only above 0', () => {
  const binary = { ...config.delay, tolerance: 0 };
  expect(delayOfLane(binary, { tolerance: 0.2 })).toBe(binary);
  expect(delayOfLane(config.delay, { tolerance: 0 })).toBe(config.delay);
  expect(delayOfLane(config.delay, undefined)).toBe(config.delay);
  expect(delayOfLane(config.delay, { tolerance: 0.2 })).toEqual({ ...config.delay, tolerance: 0.2 });
  expect(ladderTolerances({ delay: binary, lanes: [{ tolerance: 0.2 }] })).toEqual([]);
});
