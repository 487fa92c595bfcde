/**
 * A quorum rung declared a moment before the broker is killed keeps what was confirmed into it.
 *
 * RabbitMQ records a new quorum queue's Raft member in a DETS table whose writes reach disk
 * 3 s or more later; a node killed before then brings the queue back as a new, empty member
 * (its log: "Starting member as a new one. Context: name_not_registered"), and the messages
 * confirmed into it are gone. Measured on 3.10 and 4.0 without orbit: the youngest queue
 * (11–46 ms old) came back empty in 6 of 7 kills. So orbit waits `NEW_QUORUM_QUEUE_SETTLE_MS`
 * after creating a quorum queue before the first publish to it: a rung on its first use, and
 * the lane on the first connect to a namespace. Here the node is killed as soon as the
 * confirms are in; every message must be there after the restart (docs/RELIABILITY.md). A private node
 * (3.10, or 4.0 under ORBIT_TEST_RABBITMQ=4): the shared broker is never killed.
 */
import amqplib from 'amqplib';
import { Scheduler } from '../../src';
import { NEW_QUORUM_QUEUE_SETTLE_MS } from '../../src/amqp/new-quorum-queue';
import { silentLogger } from '../../src/logging/logger';
import { names } from '../../src/naming/names';
import { randomNamespace, testConfig } from '../helpers/broker';
import { privateBrokerForFile } from '../helpers/private-broker';
import { sleep, timerFloorMs } from '../helpers/wait';

jest.setTimeout(240_000);

const broker = privateBrokerForFile();

/** Depth of `queue`, read until it equals `expected` or 30 s have passed (a quorum queue recovers after a restart). */
async function depthAfterRecovery(url: string, queue: string, expected: number): Promise<number | 'missing'> {
  const conn = await amqplib.connect(url);
  conn.on('error', () => undefined);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      let depth: number;
      try {
        depth = (await ch.checkQueue(queue)).messageCount;
        await ch.close();
      } catch {
        return 'missing';
      }
      if (depth === expected || Date.now() > deadline) return depth;
      await sleep(500);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

test('messages confirmed into a quorum rung declared just before a kill -9 are all there after the restart', async () => {
  const b = broker();
  const ns = randomNamespace('qrung');
  const PER_RUNG = 20;
  const ROUNDS = 3;
  const config = testConfig(ns, {
    amqp: { url: b.url, reconnect: '500ms', publishTimeout: '10s' },
    delay: { unit: '1s', tolerance: '2%', queueType: 'quorum' },
    // RabbitMQ 3.x quorum queues have no priorities.
    lanes: [{ name: 'a', queueType: 'quorum', maxPriority: 0 }],
  });
  for (let round = 0; round < ROUNDS; round++) {
    const scheduler = new Scheduler({ config, logger: silentLogger() });
    await scheduler.connect();
    // Hours ahead, each round a rung of its own: nothing expires while the test looks.
    const delay = (round + 1) * 3_600_000;
    const began = performance.now();
    const published = await Promise.all(Array.from({ length: PER_RUNG }, (_, i) => scheduler.publish('a', { round, i }, { delay })));
    const tookMs = performance.now() - began;
    // The kill comes as soon as the confirms are in.
    await b.kill();
    void scheduler.close().catch(() => undefined);
    expect(published).toHaveLength(PER_RUNG);
    // The first publish to a new quorum rung waited for it to become crash-safe.
    expect(tookMs).toBeGreaterThanOrEqual(timerFloorMs(NEW_QUORUM_QUEUE_SETTLE_MS));
    await b.restart(90_000);
    // The rung of that delay: the one the ladder rounds an hour (or two, three) up to.
    const rungs = (await b.ctl('-q', 'list_queues', 'name', '--no-table-headers')).split('\n').map((l) => l.trim()).filter((q) => q.startsWith(`${ns}.wait:`));
    expect(rungs).toHaveLength(round + 1);
    for (const rung of rungs) expect(await depthAfterRecovery(b.url, rung, PER_RUNG)).toBe(PER_RUNG);
  }
});

test('messages confirmed into a quorum lane its first connect declared are all there after a kill -9 right after the confirm', async () => {
  const b = broker();
  const ns = randomNamespace('qlane');
  const COUNT = 20;
  const config = testConfig(ns, {
    amqp: { url: b.url, reconnect: '500ms', publishTimeout: '10s' },
    delay: { unit: '1s', tolerance: '2%', queueType: 'quorum' },
    lanes: [{ name: 'a', queueType: 'quorum', maxPriority: 0 }],
  });
  const scheduler = new Scheduler({ config, logger: silentLogger() });
  const began = performance.now();
  // The connect declares the lane (and the dead and unroutable queues): new quorum queues.
  await scheduler.connect();
  const connectMs = performance.now() - began;
  // Due now: straight into the lane.
  await Promise.all(Array.from({ length: COUNT }, (_, i) => scheduler.publish('a', { i }))).finally(() => b.kill());
  void scheduler.close().catch(() => undefined);
  await b.restart(90_000);
  expect(await depthAfterRecovery(b.url, names(ns).lane('a'), COUNT)).toBe(COUNT);
  // The connect waited for the new quorum queues to settle.
  expect(connectMs).toBeGreaterThanOrEqual(timerFloorMs(NEW_QUORUM_QUEUE_SETTLE_MS));
  // A second connect finds the queues there and does not wait.
  const again = new Scheduler({ config, logger: silentLogger() });
  const second = performance.now();
  await again.connect();
  expect(performance.now() - second).toBeLessThan(NEW_QUORUM_QUEUE_SETTLE_MS);
  await again.close();
});
