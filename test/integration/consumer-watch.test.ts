/**
 * A lane consumer the broker stopped delivering to is restarted (`worker/consumer-watch.ts`).
 *
 * The fault is the one RabbitMQ can leave after a quorum queue's leader moved
 * (rabbitmq-server#15473): the broker counts the consumer's whole prefetch as delivered and
 * unacked, while the client never received those messages, so nothing more is delivered and
 * the lane waits for ever. Here the real broker delivers the lane's first consumer its
 * prefetch, and the deliveries are dropped on their way into orbit (amqplib's consume
 * callback is wrapped): from the broker's side and from orbit's, exactly that state.
 */
import { dirname, join } from 'node:path';
import type { Channel, ConsumeMessage, Options, Replies } from 'amqplib';
import { Daemon, Scheduler } from '../../src';
import { CONSUMER_WATCH_MS } from '../../src/worker/consumer-watch';
import { deleteNamespace, queueDepth, randomNamespace, testConfig } from '../helpers/broker';
import { sleep, waitFor } from '../helpers/wait';

type Consume = (this: Channel, queue: string, onMessage: (msg: ConsumeMessage | null) => void, options?: Options.Consume) => Promise<Replies.Consume>;
// amqplib's Channel class, whose `consume` every channel the daemon opens runs (by its file:
// the package exports only its entry point).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Channel: ChannelClass } = require(join(dirname(require.resolve('amqplib')), 'lib', 'channel_model.js')) as { Channel: { prototype: { consume: Consume } } };

function restarts(text: string, lane: string): number {
  const m = new RegExp(`^orbit_consumer_restarts_total\\{lane="${lane}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

test('a lane consumer that gets nothing while its queue holds ready messages is restarted; each message runs once', async () => {
  const ns = randomNamespace('cwatch');
  const CONCURRENCY = 3;
  const MESSAGES = 10;
  const config = testConfig(ns, { lanes: [{ name: 'w', concurrency: CONCURRENCY }] });
  const laneQueue = `${ns}.lane.w`;
  const scheduler = new Scheduler({ config });
  const runs = new Map<string, number>();
  const daemon = new Daemon({
    config,
    handlers: {
      w: (m) => {
        runs.set(m.id, (runs.get(m.id) ?? 0) + 1);
        return undefined;
      },
    },
  });
  const consume = ChannelClass.prototype.consume;
  let consumers = 0;
  let dropped = 0;
  const spy = jest.spyOn(ChannelClass.prototype, 'consume').mockImplementation(function (this: Channel, queue, onMessage, options) {
    if (queue !== laneQueue || consumers++ > 0) return consume.call(this, queue, onMessage, options);
    // The lane's first consumer: its whole prefetch is lost on the way in.
    return consume.call(this, queue, (msg) => (msg && dropped < CONCURRENCY ? void dropped++ : onMessage(msg)), options);
  });
  try {
    for (let i = 0; i < MESSAGES; i++) await scheduler.publish('w', { i }, { id: `m-${i}` });
    const began = Date.now();
    await daemon.start();
    // Stuck: the broker holds the prefetch as unacked and delivers nothing more.
    await waitFor(() => dropped === CONCURRENCY, 10_000, 'the first consumer to get its prefetch');
    await sleep(1000);
    expect(runs.size).toBe(0);
    expect(await queueDepth(laneQueue)).toBe(MESSAGES - CONCURRENCY);

    // Two looks a watch interval apart restart it: a new consumer gets everything, the dropped ones too.
    await waitFor(() => runs.size === MESSAGES, 5 * CONSUMER_WATCH_MS, 'every message to run after the restart');
    const tookMs = Date.now() - began;
    expect(consumers).toBe(2);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(restarts(await daemon.metrics.registry.metrics(), 'w')).toBe(1);
    // Found within about three intervals: starved one interval, seen at two looks one interval apart.
    expect(tookMs).toBeLessThan(4 * CONSUMER_WATCH_MS);

    // Idle with an empty queue is not stuck: two more looks restart nothing.
    await sleep(2 * CONSUMER_WATCH_MS + 1000);
    expect(restarts(await daemon.metrics.registry.metrics(), 'w')).toBe(1);
    expect(consumers).toBe(2);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  } finally {
    spy.mockRestore();
    await daemon.stop();
    await scheduler.close();
    await deleteNamespace(ns);
  }
}, 60_000);
