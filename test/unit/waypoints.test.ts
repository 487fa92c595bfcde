/**
 * Long delays and cancels (`delay/waypoints.ts`): a delay longer than a cancel is remembered
 * travels in hops, each ending in its lane, so every copy meets the lane while a cancel of it
 * is still held. The hop arithmetic, and what the publisher and the decoder make of it.
 */
import type { Message as AmqpMessage } from 'amqplib';
import type { ConfirmedPublisher } from '../../src/amqp/confirmed-publisher';
import { allowedLatenessMs, ladderRungs, rungIndex } from '../../src/delay/ladder';
import { longestHopMs } from '../../src/delay/waypoints';
import { HEADER } from '../../src/message/headers';
import type { OutgoingMessage } from '../../src/message/types';
import { names } from '../../src/naming/names';
import { MessagePublisher } from '../../src/publish/message-publisher';
import { decodeDelivery } from '../../src/worker/incoming';
import { testConfig } from '../helpers/broker';
import { mulberry32 } from '../helpers/prng';

describe('longestHopMs', () => {
  test('a hop published before a cancel reaches its lane within half the retention plus a unit, at any tolerance', () => {
    const random = mulberry32(17);
    for (let i = 0; i < 2_000; i++) {
      const unitMs = Math.ceil(random() * 60_000);
      const retentionMs = Math.max(60_000, 4 * unitMs) + Math.floor(random() * 30 * 86_400_000);
      const tolerance = random() < 0.1 ? 0 : random();
      const hop = longestHopMs(retentionMs, tolerance);
      // The ladder's bound for the hop: it runs (here: reaches its lane) by hop + τ × hop + unit.
      const latest = hop + allowedLatenessMs(hop, tolerance, unitMs);
      expect(latest).toBeLessThanOrEqual(retentionMs / 2 + unitMs);
      // And the hop is long enough to make progress: at least a unit.
      expect(hop).toBeGreaterThanOrEqual(unitMs);
    }
  });

  test('the default retention (7 d) at 2 %: hops of about 3.4 days', () => {
    expect(longestHopMs(7 * 86_400_000, 0.02)).toBe(Math.floor((7 * 86_400_000) / 2.04));
    expect(longestHopMs(7 * 86_400_000, 0)).toBe(3.5 * 86_400_000);
  });
});

interface Sent {
  readonly routingKey: string;
  readonly headers: Record<string, unknown>;
  readonly cc: readonly string[] | undefined;
}

function publisherFor(config: ReturnType<typeof testConfig>, hopMs: number) {
  const sent: Sent[] = [];
  const fake = {
    publish(_exchange: string, routingKey: string, _body: Buffer, options: { headers?: Record<string, unknown>; CC?: string[] }): Promise<void> {
      sent.push({ routingKey, headers: options.headers ?? {}, cc: options.CC });
      return Promise.resolve();
    },
  } as unknown as ConfirmedPublisher;
  const rungs = { ensure: () => undefined, forget: () => undefined };
  return { sent, mp: new MessagePublisher(fake, names(config.namespace), config.delay, config.lanes, rungs, { longestHopMs: hopMs }) };
}

function outgoing(delayMs: number, now: number, lane = 'b'): OutgoingMessage {
  return { id: 'm1', lane, body: Buffer.from('{}'), priority: 0, dueAt: now + delayMs, delayMs, runs: 2, attempt: 0, generation: 5, headers: {} };
}

describe('MessagePublisher with a longest hop', () => {
  const config = testConfig('unit-hop', { delay: { unit: '1s', tolerance: '2%' }, lanes: [{ name: 'b', bundle: { max: 100, linger: '1h' } }] });
  const rungs = ladderRungs(0.02, 2 ** config.delay.levels - 1);
  const rungOf = (ms: number) => names('unit-hop').rung(rungs[rungIndex(rungs, Math.ceil(ms / 1000))]! * 1000, false);

  test('a delay longer than the hop waits one hop, alone, marked as a waypoint, carrying its final due time', async () => {
    const hop = 3_600_000;
    const { sent, mp } = publisherFor(config, hop);
    const now = Date.now();
    await mp.schedule(outgoing(10 * hop, now));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.routingKey).toBe(rungOf(hop));
    expect(sent[0]!.headers).toMatchObject({ [HEADER.waypoint]: 1, [HEADER.due]: now + 10 * hop, [HEADER.runs]: 2, [HEADER.generation]: 5 });
    expect(sent[0]!.cc).toEqual([names('unit-hop').toDestination('b')]);
  });

  test('scheduleWith does the same; a delay within the hop goes straight to its own rung, bundled, unmarked', async () => {
    const hop = 3_600_000;
    const { sent, mp } = publisherFor(config, hop);
    const now = Date.now();
    const settled: boolean[] = [];
    mp.scheduleWith(outgoing(2 * hop, now), (_t, ok) => settled.push(ok), 1);
    mp.scheduleWith(outgoing(hop, now), (_t, ok) => settled.push(ok), 2);
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(1); // the hop went at once; the other lingers in its bundle
    expect(sent[0]!.routingKey).toBe(rungOf(hop));
    expect(sent[0]!.headers[HEADER.waypoint]).toBe(1);
    await mp.stopLingering();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.routingKey).toBe(rungOf(hop));
    expect(sent[1]!.headers[HEADER.waypoint]).toBeUndefined();
    expect(settled).toEqual([true, true]);
  });

  test('a delay past the maximum is refused whole, not cut into hops', () => {
    const { sent, mp } = publisherFor(config, 3_600_000);
    const tooLong = (2 ** config.delay.levels) * 1000;
    expect(() => mp.schedule(outgoing(tooLong, Date.now()))).toThrow(/exceeds the maximum/);
    expect(() => mp.scheduleWith(outgoing(tooLong, Date.now()), () => undefined, 1)).toThrow(/exceeds the maximum/);
    expect(sent).toHaveLength(0);
  });
});

describe('decodeDelivery of a waypoint', () => {
  const lane = testConfig('ns', { lanes: [{ name: 'b' }] }).lanes[0]!;
  const raw = (headers: Record<string, unknown>) =>
    ({
      content: Buffer.from('{}'),
      fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: '', consumerTag: 'c' },
      properties: { headers, messageId: 'w1' },
    }) as unknown as AmqpMessage;

  test('is marked, and the mark is not among the user headers a replacement carries', () => {
    const [w] = decodeDelivery(raw({ [HEADER.due]: 9_000, [HEADER.waypoint]: 1, mine: 'x' }), lane, 1_000);
    expect(w!.waypoint).toBe(true);
    expect(w!.message.dueAt.getTime()).toBe(9_000);
    expect(w!.decision.userHeaders).toEqual({ mine: 'x' });
    const [plain] = decodeDelivery(raw({ [HEADER.due]: 9_000 }), lane, 1_000);
    expect(plain!.waypoint).toBe(false);
  });
});
