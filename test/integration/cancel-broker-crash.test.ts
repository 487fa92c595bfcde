/**
 * A cancel survives the broker: confirmed cancels are in the namespace's tombstone stream on
 * disk, so a daemon started after the broker was killed (kill -9) and restarted still drops
 * the copies they cover. A private node (3.10, or 4.0 under ORBIT_TEST_RABBITMQ=4): the
 * shared broker is never killed.
 */
import { Daemon, Scheduler, type WorkerObserver } from '../../src';
import { silentLogger } from '../../src/logging/logger';
import { randomNamespace, testConfig } from '../helpers/broker';
import { privateBrokerForFile } from '../helpers/private-broker';
import { Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';

jest.setTimeout(240_000);

const broker = privateBrokerForFile();

test('cancels confirmed before a kill -9 of the broker still drop their copies after the restart, in a daemon started after it', async () => {
  const b = broker();
  const ns = randomNamespace('cancelcrash');
  const config = testConfig(ns, { amqp: { url: b.url, reconnect: '500ms', publishTimeout: '10s' }, lanes: [{ name: 'a', concurrency: 50 }] });
  const ids = Array.from({ length: 200 }, (_, i) => `c${i}`);
  const cancelled = ids.filter((_, i) => i % 2 === 0);
  const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
  try {
    // Due 15 s out: still resting in their rung through the kill and the restart (a few seconds).
    await Promise.all(ids.map((id) => scheduler.publish('a', { id }, { id, delay: 15_000 })));
    expect((await scheduler.cancel(cancelled)).cancelled).toBe(100);
  } finally {
    await scheduler.close();
  }
  // Killed as soon as the cancels are confirmed. The first cancel created the stream, the
  // node's first: RabbitMQ's stream coordinator, a Raft member, was created with it, and one
  // killed moments after that comes back "down or inaccessible" for good (measured without
  // orbit). `cancel` waits out the settle time after creating the stream, so it does not.
  await b.kill();
  await b.restart();

  const recorder = new Recorder();
  let dropped = 0;
  const observer: WorkerObserver = { messageCancelled: () => dropped++ };
  const daemon = new Daemon({ config, handlers: { a: recorder.wrap() }, observer, logger: silentLogger() });
  try {
    await daemon.start();
    await waitFor(() => recorder.count >= 100 && dropped >= 100, 60_000, 'the 100 kept to run and the 100 cancelled to be dropped');
    await sleep(1000);
  } finally {
    await daemon.stop();
  }
  const ran = new Map<string, number>();
  for (const r of recorder.runs) ran.set(r.id, (ran.get(r.id) ?? 0) + 1);
  expect(cancelled.filter((id) => ran.has(id))).toEqual([]);
  expect(ids.filter((id) => !cancelled.includes(id) && ran.get(id) !== 1)).toEqual([]);
  expect(dropped).toBe(100);
});
