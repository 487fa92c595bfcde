/**
 * A queue the broker never answers (a quorum queue without a leader: docs/RELIABILITY.md) must
 * not hold the daemon's looks or its stop. On a fake connection whose channels answer one call
 * at a time, as AMQP channels do: the queue sampler's round gives up, leaves the queue out for
 * a while and carries on on a new channel; a channel whose close is never confirmed is closed
 * within `closeTimeoutMs`.
 */
import { EventEmitter } from 'node:events';
import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import { ManagedChannel } from '../../src/amqp/managed-channel';
import { answeredWithin, UNANSWERED } from '../../src/amqp/within';
import { silentLogger } from '../../src/logging/logger';
import { type QueueDepth, QueueSampler } from '../../src/metrics/queue-sampler';
import { sleep, timerFloorMs } from '../helpers/wait';

/** Channels whose calls to `held` queues (and whose closes, when `closeHangs`) never answer. */
function fakeBroker(held: ReadonlySet<string>, closeHangs = false) {
  let opened = 0;
  const channel = () => {
    opened++;
    let rpc: Promise<unknown> = Promise.resolve();
    const call = <T>(answer: () => Promise<T>): Promise<T> => {
      const next = rpc.then(answer);
      rpc = next.catch(() => undefined);
      return next;
    };
    return {
      on: () => undefined,
      close: () => (closeHangs ? new Promise<void>(() => undefined) : Promise.resolve()),
      checkQueue: (queue: string) =>
        call(() => (held.has(queue) ? new Promise<never>(() => undefined) : Promise.resolve({ queue, messageCount: 7, consumerCount: 1 }))),
    };
  };
  const model = { createChannel: async () => channel() };
  const manager = Object.assign(new EventEmitter(), { isConnected: () => true, connection: model });
  return { manager: manager as unknown as AmqpConnectionManager, opened: () => opened };
}

const queues = ['a', 'b', 'c'].map((name) => ({ name, role: 'delay' as const }));

test('a sampling round that meets an unanswered queue gives up, and the next rounds go on without it on a new channel', async () => {
  const broker = fakeBroker(new Set(['b']));
  const samples: QueueDepth[][] = [];
  const sampler = new QueueSampler(broker.manager, () => queues, (d) => samples.push(d), 60_000, silentLogger(), undefined, 200);
  await sleep(10); // the first channel opens
  const began = Date.now();
  expect(await sampler.sample()).toEqual([]);
  expect(Date.now() - began).toBeGreaterThanOrEqual(timerFloorMs(200));
  expect(Date.now() - began).toBeLessThan(1000);
  // No sample from a round that gave up: a partial one would read as queues gone.
  expect(samples).toEqual([]);
  await sleep(10); // the replacement channel opens
  expect(broker.opened()).toBe(2);
  const next = await sampler.sample();
  expect(next.map((d) => d.queue)).toEqual(['a', 'c']);
  expect(samples).toHaveLength(1);
  await sampler.stop();
});

test('closing a channel whose close the broker never confirms ends after closeTimeoutMs', async () => {
  const broker = fakeBroker(new Set(), true);
  const ch = new ManagedChannel<Channel>(broker.manager, { name: 't', confirm: false, setup: async () => undefined, closeTimeoutMs: 100 }, silentLogger());
  await sleep(10);
  expect(ch.current()).toBeDefined();
  const began = Date.now();
  await ch.close();
  expect(Date.now() - began).toBeGreaterThanOrEqual(timerFloorMs(100));
  expect(Date.now() - began).toBeLessThan(1000);
});

describe('answeredWithin', () => {
  test('resolves with the work, or rejects as it does, when it settles in time', async () => {
    await expect(answeredWithin(Promise.resolve(7), 1000)).resolves.toBe(7);
    await expect(answeredWithin(Promise.reject(new Error('refused')), 1000)).rejects.toThrow('refused');
  });

  test('resolves UNANSWERED once the time has passed, and the work failing later is no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let fail!: (err: Error) => void;
      const work = new Promise<number>((_, reject) => (fail = reject));
      const began = Date.now();
      expect(await answeredWithin(work, 50)).toBe(UNANSWERED);
      expect(Date.now() - began).toBeGreaterThanOrEqual(timerFloorMs(50));
      fail(new Error('answered too late'));
      await sleep(20);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
