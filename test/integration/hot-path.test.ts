/**
 * The hot path's two batching tricks, against the real broker:
 * - socket writes of one tick go out together (coalesce-writes.ts, which reaches into an
 *   amqplib internal: this test fails if a new amqplib moves it);
 * - acks are coalesced per event-loop turn without ever waiting behind a slow handler
 *   (ack-batcher.ts): a prefetch window with one stuck message keeps flowing.
 */
import type { ChannelModel } from 'amqplib';
import { Daemon, Scheduler } from '../../src';
import { isCoalescing, socketOfConnection } from '../../src/amqp/coalesce-writes';
import { connectionName, openConnection } from '../../src/amqp/connection';
import { silentLogger } from '../../src/logging/logger';
import { deleteNamespace, queueDepth, randomNamespace, testConfig } from '../helpers/broker';
import { waitFor } from '../helpers/wait';

describe('socket writes are coalesced per tick', () => {
  const ns = randomNamespace('hot');
  afterAll(() => deleteNamespace(ns));

  test('orbit connections cork their socket, and 200 publishes in one tick take a handful of syscalls', async () => {
    const config = testConfig(ns, { lanes: [{ name: 'a' }] });
    const manager = openConnection(config.amqp, connectionName(ns, 'cli'), silentLogger());
    try {
      await manager.connect({ timeout: 10_000 });
      const model = manager.connection as ChannelModel | undefined;
      const socket = socketOfConnection(model);
      expect(socket).toBeDefined(); // amqplib still keeps its socket at ChannelModel.connection.stream
      expect(isCoalescing(socket!)).toBe(true);

      const ch = await model!.createConfirmChannel();
      const queue = `${ns}.probe`;
      await ch.assertQueue(queue, { durable: false, autoDelete: false });
      // Count what reaches the kernel: net.Socket sends a corked batch with one _writev.
      const counted = socket as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
      let syscalls = 0;
      const { _write, _writev } = counted;
      counted._write = function (...a: unknown[]) {
        syscalls++;
        return _write.apply(this, a);
      };
      counted._writev = function (...a: unknown[]) {
        syscalls++;
        return _writev.apply(this, a);
      };
      try {
        for (let i = 0; i < 200; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`));
        await ch.waitForConfirms();
      } finally {
        counted._write = _write;
        counted._writev = _writev;
      }
      // Without coalescing: one write per publish (200). amqplib's muxer hands over frames on
      // setImmediate turns, so a few batches are expected, never one per message.
      expect(syscalls).toBeLessThanOrEqual(20);
      expect(await queueDepth(queue)).toBe(200);
      await ch.deleteQueue(queue);
      await ch.close();
    } finally {
      await manager.close();
    }
  });
});

describe('acks are batched without waiting behind a slow handler', () => {
  const ns = randomNamespace('hot');
  afterAll(() => deleteNamespace(ns));

  test('with one message stuck at the front of a prefetch window of 10, 60 others still run and are acked', async () => {
    const config = testConfig(ns, { lanes: [{ name: 'a', concurrency: 10 }] });
    let releaseSlow: () => void = () => undefined;
    const slowHeld = new Promise<void>((r) => (releaseSlow = r));
    const runs = new Map<string, number>();
    const daemon = new Daemon({
      config,
      handlers: {
        a: async (m) => {
          runs.set(m.id, (runs.get(m.id) ?? 0) + 1);
          if (m.id === 'slow') await slowHeld;
          return { done: true };
        },
      },
    });
    const scheduler = new Scheduler({ config });
    try {
      await scheduler.connect();
      await scheduler.publish('a', { n: 0 }, { id: 'slow' });
      for (let i = 0; i < 60; i++) await scheduler.publish('a', { n: i }, { id: `fast-${i}` });
      await daemon.start();
      // If acks waited for the stuck front delivery, the window (10) would fill after 9 and stop.
      await waitFor(() => [...runs.keys()].filter((id) => id.startsWith('fast-')).length === 60, 20_000, 'all 60 fast messages to run');
      expect(runs.get('slow')).toBe(1);
      releaseSlow();
      await waitFor(async () => (await queueDepth(`${ns}.lane.a`)) === 0, 10_000, 'an empty lane');
    } finally {
      releaseSlow();
      await scheduler.close();
      await daemon.stop();
    }
    // Stopping flushed the last acks: nothing comes back, nothing ran twice.
    expect(await queueDepth(`${ns}.lane.a`)).toBe(0);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(61);
  });
});
