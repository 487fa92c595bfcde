/**
 * Lateness against the bound: the publisher writes each message's allowed lateness
 * (`τ × delay + unit + linger`) beside it, a plain message's as a number and a bundle's as one
 * per entry; the lane reads it back per logical message, and the metric observes lateness as
 * a share of it. Without a broker.
 */
import type { Message as AmqpMessage } from 'amqplib';
import type { ConfirmedPublisher } from '../../src/amqp/confirmed-publisher';
import { allowedLatenessMs } from '../../src/delay/ladder';
import { allowanceOf, BUNDLE_HEADER, BUNDLE_VERSION, encodeAllowances, encodeBundle, MAX_BUNDLE_ALLOWANCE_MS } from '../../src/message/bundle';
import { HEADER, readState } from '../../src/message/headers';
import type { OutgoingMessage } from '../../src/message/types';
import { Metrics } from '../../src/metrics/metrics';
import { names } from '../../src/naming/names';
import { MessagePublisher } from '../../src/publish/message-publisher';
import { decodeDelivery } from '../../src/worker/incoming';
import { testConfig } from '../helpers/broker';

interface Sent {
  readonly body: Buffer;
  readonly headers: Record<string, unknown>;
}

function publisherFor(config: ReturnType<typeof testConfig>) {
  const sent: Sent[] = [];
  const fake = {
    publish(_exchange: string, _routingKey: string, body: Buffer, options: { headers: Record<string, unknown> }): Promise<void> {
      sent.push({ body, headers: options.headers });
      return Promise.resolve();
    },
  } as unknown as ConfirmedPublisher;
  const rungs = { ensure: () => undefined, forget: () => undefined };
  return { sent, mp: new MessagePublisher(fake, names('unit-bound'), config.delay, config.lanes, rungs) };
}

function outgoing(id: string, lane: string, delayMs: number): OutgoingMessage {
  const now = Date.now();
  return { id, lane, body: Buffer.from('{}'), priority: 0, dueAt: now + delayMs, delayMs, runs: 0, attempt: 0, generation: 0, headers: {} };
}

function delivery(sent: Sent): AmqpMessage {
  return {
    content: sent.body,
    fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: '', consumerTag: 'c' },
    properties: { headers: sent.headers, priority: 0, messageId: 'x', contentType: undefined },
  } as unknown as AmqpMessage;
}

describe('the allowance a message is published with', () => {
  const config = testConfig('unit-bound', {
    delay: { unit: '1s', tolerance: '2%' },
    lanes: [
      { name: 'plain', bundle: { max: 1 } },
      { name: 'b', bundle: { max: 3, linger: '200ms' } },
    ],
  });

  test('a plain message carries τ × delay + unit (no linger: its lane does not bundle)', async () => {
    const { sent, mp } = publisherFor(config);
    await mp.schedule(outgoing('p', 'plain', 3_600_000));
    expect(sent[0]!.headers[HEADER.allowed]).toBe(allowedLatenessMs(3_600_000, 0.02, 1000));
    expect(sent[0]!.headers[HEADER.allowed]).toBe(73_000);
    const [m] = decodeDelivery(delivery(sent[0]!), config.lanes[0]!, Date.now());
    expect(m!.allowedMs).toBe(73_000);
  });

  test('a bundle carries one allowance per entry, linger included, and each entry reads its own back', async () => {
    const { sent, mp } = publisherFor(config);
    // One rung (the same delay in units, the same route): one bundle of three.
    const delays = [3_600_000, 3_600_400, 3_600_900];
    await Promise.all(delays.map((d, i) => mp.schedule(outgoing(`e${i}`, 'b', d), 'reschedule')));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.headers[BUNDLE_HEADER]).toBe(BUNDLE_VERSION);
    const out = decodeDelivery(delivery(sent[0]!), config.lanes[1]!, Date.now());
    expect(out.map((m) => [m.message.id, m.allowedMs])).toEqual(delays.map((d, i) => [`e${i}`, allowedLatenessMs(d, 0.02, 1000, 200)]));
  });

  test('tolerance 0: the unit (and linger) alone', async () => {
    const exact = testConfig('unit-bound', { delay: { unit: '100ms', levels: 10, tolerance: 0 }, lanes: [{ name: 'plain', bundle: { max: 1 } }] });
    const { sent, mp } = publisherFor(exact);
    await mp.schedule(outgoing('p', 'plain', 5_000));
    expect(sent[0]!.headers[HEADER.allowed]).toBe(100);
  });
});

describe('reading an allowance', () => {
  test('a bundle header of the wrong length, a missing one, or 0 for an entry: not judged', () => {
    const header = encodeAllowances(3, (i) => [10, 0, 5.2][i]!);
    expect([0, 1, 2].map((i) => allowanceOf(header, 3, i))).toEqual([10, undefined, 6]);
    expect(allowanceOf(header, 2, 0)).toBeUndefined();
    expect(allowanceOf(undefined, 3, 0)).toBeUndefined();
    expect(allowanceOf(7, 1, 0)).toBeUndefined();
    expect(allowanceOf(encodeAllowances(1, () => 1e12), 1, 0)).toBe(MAX_BUNDLE_ALLOWANCE_MS);
  });

  test('a bundle without the header (an older publisher) decodes as before, its entries not judged', () => {
    const body = encodeBundle([
      { id: 'a', runs: 0, attempt: 0, dueAt: 1_000, body: Buffer.from('{}') },
      { id: 'b', runs: 0, attempt: 0, dueAt: 1_000, body: Buffer.from('{}') },
    ]);
    const out = decodeDelivery(delivery({ body, headers: { [BUNDLE_HEADER]: BUNDLE_VERSION } }), testConfig('ns', { lanes: [{ name: 'b' }] }).lanes[0]!, 5_000);
    expect(out.map((m) => m.allowedMs)).toEqual([undefined, undefined]);
  });

  test('a plain header that is not a positive number is not judged', () => {
    for (const bad of ['12', -5, 0, NaN, Buffer.from('12'), null]) expect(readState({ [HEADER.allowed]: bad }, 0).allowedMs).toBeUndefined();
    expect(readState({ [HEADER.allowed]: 1500 }, 0).allowedMs).toBe(1500);
    expect(readState({ [HEADER.allowed]: 1500n }, 0).allowedMs).toBe(1500);
  });
});

test('orbit_lateness_bound_ratio observes lateness ÷ allowance; early runs and runs without an allowance are left out', async () => {
  const metrics = new Metrics();
  metrics.initLanes([{ name: 'a', concurrency: 5, rateLimit: null }]);
  const worker = metrics.workerObserver();
  worker.handlerStarted!('a', 50, false, 1000); // 0.05
  worker.handlerStarted!('a', 1000, false, 1000); // exactly at the bound
  worker.handlerStarted!('a', 1300, false, 1000); // past it
  worker.handlerStarted!('a', -20, false, 1000); // a broker clock a little ahead: 0
  worker.handlerStarted!('a', -60_000, true, 1000); // early (work-ahead): not judged
  worker.handlerStarted!('a', 5000, false, undefined); // no allowance: not judged
  const text = await metrics.registry.metrics();
  expect(text).toContain('orbit_lateness_bound_ratio_count{lane="a"} 4');
  expect(text).toContain('orbit_lateness_bound_ratio_bucket{lane="a",le="0.1"} 2');
  expect(text).toContain('orbit_lateness_bound_ratio_bucket{lane="a",le="1"} 3');
  expect(text).toContain('orbit_lateness_bound_ratio_bucket{lane="a",le="1.5"} 4');
  expect(text).toContain('orbit_lateness_seconds_count{lane="a"} 6');
});
