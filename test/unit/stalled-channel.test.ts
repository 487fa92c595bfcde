/**
 * A queue that stalls the publish channel. A channel's first publish to a quorum queue makes
 * the broker's channel process wait for the queue to register it; a quorum queue without a
 * leader answers only after ~65 s, and the channel handles nothing else until then (measured
 * on RabbitMQ 3.10.8 and 4.0.5). On a fake connection whose channels behave so: the publishes
 * held behind such a queue go again on a new channel, the suspect queues each get a channel
 * of their own, and only the stalling queue's publishes fail.
 */
import { EventEmitter } from 'node:events';
import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { ConfirmChannel } from 'amqplib';
import { CONFIRM_TIMEOUT, ConfirmedPublisher } from '../../src/amqp/confirmed-publisher';
import { ManagedChannel } from '../../src/amqp/managed-channel';
import { isOrbitError } from '../../src/errors';
import { silentLogger } from '../../src/logging/logger';
import { Metrics } from '../../src/metrics/metrics';
import { waitFor } from '../helpers/wait';

const TIMEOUT_MS = 200;

/**
 * Channels that confirm each publish on the next turn, except: a first publish to a `stalling`
 * queue stalls its channel for good (it and everything after it stay unconfirmed); a `mute`
 * queue confirms its first publish on a channel and no later one, without stalling anything.
 */
function fakeBroker(stalling: ReadonlySet<string>, mute: ReadonlySet<string> = new Set()) {
  const opened: Array<{ published: string[]; close: () => Promise<void> }> = [];
  const channel = () => {
    const seen = new Set<string>();
    /** Confirms never sent: failed when the channel closes, as amqplib does. */
    const unconfirmed: Array<(err: unknown) => void> = [];
    let stuck = false;
    let closed = false;
    const ch: EventEmitter & { close(): Promise<void>; publish(...args: unknown[]): boolean } = Object.assign(new EventEmitter(), {
      close: async () => {
        if (closed) return;
        closed = true;
        for (const confirmed of unconfirmed.splice(0)) confirmed(new Error('channel closed'));
        ch.emit('close');
      },
      publish: (_exchange: unknown, queue: unknown, _content: unknown, _options: unknown, confirmed: unknown) => {
        if (closed) throw new Error('Channel closed');
        const q = String(queue);
        const first = !seen.has(q);
        seen.add(q);
        record.published.push(q);
        if (first && stalling.has(q)) stuck = true;
        const settle = confirmed as (err: unknown) => void;
        if (!stuck && (first || !mute.has(q))) setImmediate(() => settle(null));
        else unconfirmed.push(settle);
        return true;
      },
    });
    const record = { published: [] as string[], close: () => ch.close() };
    opened.push(record);
    return ch;
  };
  const model = { createConfirmChannel: async () => channel() };
  const manager = Object.assign(new EventEmitter(), { isConnected: () => true, connection: model });
  return { manager: manager as unknown as AmqpConnectionManager, opened };
}

async function publisherOn(broker: ReturnType<typeof fakeBroker>) {
  const channel = new ManagedChannel<ConfirmChannel>(broker.manager, { name: 'publish', confirm: true, setup: async () => undefined }, silentLogger());
  const publisher = new ConfirmedPublisher(channel, TIMEOUT_MS, silentLogger());
  await channel.waitForChannel(1000);
  return { channel, publisher };
}

/** Resolves with how the publish ended and when (ms after `began`). */
function outcome(p: Promise<void>, began: number): Promise<{ ok: boolean; code?: string; ms: number }> {
  return p.then(
    () => ({ ok: true, ms: Date.now() - began }),
    (err: unknown) => ({ ok: false, code: isOrbitError(err) ? err.code : String(err), ms: Date.now() - began }),
  );
}

test('publishes held behind a queue that stalls the channel go again on a new channel; only that queue fails, on a channel of its own', async () => {
  const broker = fakeBroker(new Set(['sick']));
  const { channel, publisher } = await publisherOn(broker);
  const send = (queue: string) => publisher.publish('', queue, Buffer.from('x'), { messageId: queue });
  await send('ok1'); // ok1 is registered on the first channel

  const began = Date.now();
  const [sick, behindNew, behindKnown] = await Promise.all([outcome(send('sick'), began), outcome(send('ok2'), began), outcome(send('ok1'), began)]);
  // Held by the stall until the sweep saw it, then confirmed on their next channel.
  expect(behindNew).toMatchObject({ ok: true });
  expect(behindKnown).toMatchObject({ ok: true });
  expect(behindKnown.ms).toBeGreaterThanOrEqual(TIMEOUT_MS);
  expect(behindKnown.ms).toBeLessThan(2 * TIMEOUT_MS + 500);
  // The stalling queue's publish went again on a channel of its own, and failed there.
  expect(sick).toMatchObject({ ok: false, code: CONFIRM_TIMEOUT });
  expect(sick.ms).toBeGreaterThanOrEqual(2 * TIMEOUT_MS);
  // ok2 was a suspect too (its first publish was held), cleared by its confirm on its own channel.
  expect(publisher.suspectQueues()).toEqual(['sick']);
  // The daemon shows the suspects as orbit_publish_stalled_queue{queue}, read at each scrape.
  const metrics = new Metrics();
  metrics.trackStalledQueues(() => publisher.suspectQueues());
  const stalled = async () => (await metrics.registry.getSingleMetric('orbit_publish_stalled_queue')!.get()).values.map((v) => [v.labels['queue'], v.value]);
  expect(await stalled()).toEqual([['sick', 1]]);

  // First channel, its replacement, and one channel each for the two suspects.
  expect(broker.opened).toHaveLength(4);
  const [first, second] = broker.opened;
  expect(first!.published).toEqual(['ok1', 'sick', 'ok2', 'ok1']);
  expect(second!.published).toEqual(['ok1']);
  expect(broker.opened.slice(2).map((c) => c.published).sort()).toEqual([['ok2'], ['sick']]);

  // From now on a publish to the stalling queue holds nothing else.
  const later = Date.now();
  const [again, healthy, ok2] = await Promise.all([outcome(send('sick'), later), outcome(send('ok1'), later), outcome(send('ok2'), later)]);
  expect(healthy).toMatchObject({ ok: true });
  expect(healthy.ms).toBeLessThan(TIMEOUT_MS);
  expect(ok2).toMatchObject({ ok: true });
  expect(ok2.ms).toBeLessThan(TIMEOUT_MS);
  expect(again).toMatchObject({ ok: false, code: CONFIRM_TIMEOUT });
  expect(broker.opened).toHaveLength(5); // a new channel of its own for the stalling queue only
  expect(broker.opened[1]!.published).toEqual(['ok1', 'ok1', 'ok2']);
  // Still a suspect: it confirmed nothing on its own channel either.
  expect(await stalled()).toEqual([['sick', 1]]);
  await channel.close();
});

test('a publish left unconfirmed with no first publish behind it fails on its own, and the channel is kept', async () => {
  const broker = fakeBroker(new Set(), new Set(['mute']));
  const { channel, publisher } = await publisherOn(broker);
  const send = (queue: string) => publisher.publish('', queue, Buffer.from('x'), { messageId: queue });
  await send('mute');
  await send('ok');
  const began = Date.now();
  const [mute, ok] = await Promise.all([outcome(send('mute'), began), outcome(send('ok'), began)]);
  expect(ok).toMatchObject({ ok: true });
  expect(mute).toMatchObject({ ok: false, code: CONFIRM_TIMEOUT });
  expect(broker.opened).toHaveLength(1);
  expect(publisher.suspectQueues()).toEqual([]);
  await channel.close();
});

test('a suspect whose own channel closes (a lost connection) gets a new one at its next publish, not the closed one', async () => {
  const broker = fakeBroker(new Set(['sick']));
  const { channel, publisher } = await publisherOn(broker);
  const send = (queue: string) => publisher.publish('', queue, Buffer.from('x'), { messageId: queue });
  await send('ok');
  const began = Date.now();
  const first = outcome(send('sick'), began);
  // The stall is seen after one timeout; the suspect's publish then goes on a channel of its own.
  const sideOpened = () => broker.opened.slice(1).find((c) => c.published[0] === 'sick');
  await waitFor(() => sideOpened() !== undefined, 5 * TIMEOUT_MS, "the suspect's own channel", 5);
  const side = sideOpened();
  const count = broker.opened.length;
  await side!.close();
  // What was on it fails as a closed channel's publishes do.
  expect(await first).toMatchObject({ ok: false, code: 'CHANNEL_CLOSED' });
  expect(publisher.suspectQueues()).toEqual(['sick']);
  // The next publish to the suspect opens a channel of its own again, and fails there as a
  // sick queue does (not at once, on the closed channel).
  const later = Date.now();
  const again = await outcome(send('sick'), later);
  expect(again).toMatchObject({ ok: false, code: CONFIRM_TIMEOUT });
  expect(broker.opened).toHaveLength(count + 1);
  expect(broker.opened[count]!.published).toEqual(['sick']);
  await channel.close();
});
