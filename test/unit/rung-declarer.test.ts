/**
 * The rung declarer on a fake connection: a rung whose declare the broker never answers (a
 * quorum queue recovered without a leader) holds up only itself, gives up after
 * `amqp.publishTimeout`, and is not declared again until the broker answers; a quorum rung
 * declared for the first time is published to only after `settleMs`.
 */
import { EventEmitter } from 'node:events';
import type { AmqpConnectionManager } from 'amqp-connection-manager';
import { RUNG_UNANSWERED, RungDeclarer } from '../../src/amqp/rung-declarer';
import { BrokerError } from '../../src/errors';
import { silentLogger } from '../../src/logging/logger';
import { names } from '../../src/naming/names';
import { testConfig } from '../helpers/broker';
import { timerFloorMs } from '../helpers/wait';

/** A fake amqplib connection whose declares answer at once, except those of held queues, answered by `answer(queue)`. */
function fakeBroker() {
  const stuck = new Map<string, { resolve: () => void }[]>();
  const holds = new Set<string>();
  let channels = 0;
  const channel = () => {
    channels++;
    // As on a real channel, one RPC at a time: a declare waits for the one before it.
    let rpc: Promise<unknown> = Promise.resolve();
    const answered = (queue: string): Promise<unknown> =>
      holds.has(queue)
        ? new Promise<void>((resolve) => stuck.set(queue, [...(stuck.get(queue) ?? []), { resolve }]))
        : Promise.resolve({ queue, messageCount: 0, consumerCount: 0 });
    return {
      connection: { serverProperties: { version: '3.10.8' } },
      on: () => undefined,
      close: async () => undefined,
      checkQueue: async (queue: string) => ({ queue, messageCount: 0, consumerCount: 0 }),
      assertQueue: (queue: string) => {
        const next = rpc.then(() => answered(queue));
        rpc = next;
        return next;
      },
    };
  };
  const model = { createChannel: async () => channel(), createConfirmChannel: async () => channel() };
  const manager = Object.assign(new EventEmitter(), { isConnected: () => true, connection: model });
  return {
    manager: manager as unknown as AmqpConnectionManager,
    hold: (queue: string) => holds.add(queue),
    answer: (queue: string) => {
      holds.delete(queue);
      for (const w of stuck.get(queue) ?? []) w.resolve();
      stuck.delete(queue);
    },
    channels: () => channels,
  };
}

const settle = (p: Promise<void> | undefined): Promise<'ok' | unknown> => (p ?? Promise.resolve()).then(() => 'ok', (err: unknown) => err);

describe.each(['classic', 'quorum'] as const)('rung declares on %s delay queues', (queueType) => {
  const config = testConfig('ns', { amqp: { publishTimeout: '200ms' }, delay: { unit: '1s', tolerance: '2%', queueType } });
  const n = names('ns');
  const SETTLE_MS = 300;

  test('a rung the broker never answers fails after amqp.publishTimeout and holds up no other rung', async () => {
    const broker = fakeBroker();
    const rungs = new RungDeclarer(broker.manager, config, silentLogger(), SETTLE_MS);
    broker.hold(n.rung(1000));
    const began = Date.now();
    const sick = settle(rungs.ensure(n.rung(1000), 1000));
    const healthy = settle(rungs.ensure(n.rung(2000), 2000));
    expect(await healthy).toBe('ok');
    // The healthy rung did not wait for the sick one's timeout (only, on quorum, for its own settle).
    expect(Date.now() - began).toBeLessThan(queueType === 'quorum' ? SETTLE_MS + 150 : 150);
    const err = await sick;
    expect(err).toBeInstanceOf(BrokerError);
    expect((err as BrokerError).code).toBe(RUNG_UNANSWERED);
    expect(Date.now() - began).toBeGreaterThanOrEqual(timerFloorMs(200));
    await rungs.close();
  });

  test('a rung with a declare still unanswered is not declared again until the broker answers', async () => {
    const broker = fakeBroker();
    const rungs = new RungDeclarer(broker.manager, config, silentLogger(), SETTLE_MS);
    broker.hold(n.rung(1000));
    expect(await settle(rungs.ensure(n.rung(1000), 1000))).toBeInstanceOf(BrokerError);
    const opened = broker.channels();
    // Refused at once, without another channel (one waiting channel per sick rung at most).
    const again = await settle(rungs.ensure(n.rung(1000), 1000));
    expect(again).toBeInstanceOf(BrokerError);
    expect(String((again as Error).message)).toMatch(/has not answered an earlier declare/);
    expect(broker.channels()).toBe(opened);
    broker.answer(n.rung(1000));
    await new Promise((resolve) => setImmediate(resolve));
    expect(await settle(rungs.ensure(n.rung(1000), 1000))).toBe('ok');
    await rungs.close();
  });

  test(`a first declare ${queueType === 'quorum' ? 'waits settleMs before the first publish' : 'does not wait'}; a rung declared since is used at once`, async () => {
    const broker = fakeBroker();
    const rungs = new RungDeclarer(broker.manager, config, silentLogger(), SETTLE_MS);
    const began = Date.now();
    expect(await settle(rungs.ensure(n.rung(3000), 3000))).toBe('ok');
    const took = Date.now() - began;
    if (queueType === 'quorum') expect(took).toBeGreaterThanOrEqual(timerFloorMs(SETTLE_MS));
    else expect(took).toBeLessThan(SETTLE_MS);
    // Declared now: the next publish needs no declare.
    expect(rungs.ensure(n.rung(3000), 3000)).toBeUndefined();
    // A reconnect forgets the leases: the rung is declared again and, on quorum, settles again.
    (broker.manager as unknown as EventEmitter).emit('connect');
    expect(rungs.ensure(n.rung(3000), 3000)).toBeInstanceOf(Promise);
    await rungs.close();
  });
});
