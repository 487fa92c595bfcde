/**
 * Cancel and replace (README, "Cancel and replace"), against the real broker: a cancel drops
 * every copy of an id published before it — waiting in a delay queue, inside a bundle, on a
 * lane consumed by several daemons, or rescheduling itself for ever — and a daemon started
 * after the cancel knows it from the namespace's tombstone stream.
 */
import { reschedule, type Handler, type ResolvedConfig, type WorkerObserver } from '../../src';
import { HEADER } from '../../src/message/headers';
import { sendToLane } from '../helpers/broker';
import { connectTestScheduler, namespaceFor, startTestDaemon, type TestNamespace } from '../helpers/harness';
import { Cleanup, Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';
import { brokerClockSlackMs } from '../helpers/broker-clock';

jest.setTimeout(90_000);

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const namespaceWith = (settings: Record<string, unknown>): TestNamespace => namespaceFor(cleanup, 'cancel', settings);

/** Counts the copies each daemon dropped, by lane. */
function cancelCounter(): { observer: WorkerObserver; readonly count: number } {
  let count = 0;
  return {
    observer: { messageCancelled: () => count++ },
    get count() {
      return count;
    },
  };
}

function startDaemon(config: ResolvedConfig, handlers: Record<string, Handler>, observer?: WorkerObserver) {
  return startTestDaemon(cleanup, { config, handlers, ...(observer ? { observer } : {}) });
}

/**
 * A scheduler whose namespace has its tombstone stream: the first cancel of a namespace
 * creates it and waits 5 s for it to settle (README, "Cancel and replace"), longer than these
 * tests' delays. (The two-daemon test leaves it to its cancel: daemons find it as it appears.)
 */
async function schedulerWithStream(config: ResolvedConfig) {
  const scheduler = await connectTestScheduler(cleanup, config);
  const started = Date.now();
  await scheduler.cancel([]);
  expect(Date.now() - started).toBeGreaterThanOrEqual(4900);
  return scheduler;
}

function runsById(recorder: Recorder): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of recorder.runs) out.set(r.id, (out.get(r.id) ?? 0) + 1);
  return out;
}

test('1,000 ids 5 s ahead, 500 cancelled, the daemon restarted between cancel and due: the 500 never run, the other 500 run once', async () => {
  const { config } = namespaceWith({ lanes: [{ name: 'a', concurrency: 50 }] });
  const scheduler = await schedulerWithStream(config);
  const first = await startDaemon(config, { a: () => undefined });
  const ids = Array.from({ length: 1000 }, (_, i) => `m${i}`);
  await Promise.all(ids.map((id) => scheduler.publish('a', { id }, { id, delay: 5000 })));
  const cancelled = ids.filter((_, i) => i % 2 === 0);
  const result = await scheduler.cancel(cancelled);
  expect(result.cancelled).toBe(500);
  // The first daemon goes before anything is due; the second knows the cancels only from the stream.
  await first.stop();
  const recorder = new Recorder();
  const dropped = cancelCounter();
  await startDaemon(config, { a: recorder.wrap() }, dropped.observer);
  await waitFor(() => recorder.count >= 500 && dropped.count >= 500, 30_000, 'the 500 kept to run and the 500 cancelled to be dropped');
  await sleep(1500);
  const runs = runsById(recorder);
  expect(cancelled.filter((id) => runs.has(id))).toEqual([]);
  expect(ids.filter((id) => !cancelled.includes(id) && runs.get(id) !== 1)).toEqual([]);
  expect(dropped.count).toBe(500);
});

test('a cancelled id inside a bundle with 99 others: only it is dropped', async () => {
  const { config } = namespaceWith({ lanes: [{ name: 'b', concurrency: 100, bundle: { max: 100, linger: '500ms' } }] });
  const scheduler = await schedulerWithStream(config);
  const sizes: number[] = [];
  const recorder = new Recorder();
  const dropped = cancelCounter();
  await startDaemon(config, { b: recorder.wrap() }, { ...dropped.observer, deliveryDecoded: (_lane, n) => sizes.push(n) });
  const ids = Array.from({ length: 100 }, (_, i) => `b${i}`);
  await Promise.all(ids.map((id) => scheduler.publish('b', { id }, { id, delay: 3000 })));
  await scheduler.cancel('b42');
  await waitFor(() => recorder.count + dropped.count >= 100, 20_000, 'the bundle to be delivered');
  await sleep(500);
  // They travelled together: one delivery of 100 (the publishes lingered into one bundle).
  expect(sizes).toEqual([100]);
  expect(dropped.count).toBe(1);
  const runs = runsById(recorder);
  expect(runs.has('b42')).toBe(false);
  expect(ids.filter((id) => id !== 'b42' && runs.get(id) !== 1)).toEqual([]);
});

test('two daemons on one lane: neither runs a cancelled id, in a loop that reschedules itself every second', async () => {
  const { config } = namespaceWith({ lanes: [{ name: 'l', concurrency: 20 }] });
  const scheduler = await connectTestScheduler(cleanup, config);
  const recorder = new Recorder();
  const loop: Handler = recorder.wrap(() => reschedule({ delay: 1000 }));
  const droppedA = cancelCounter();
  const droppedB = cancelCounter();
  await startDaemon(config, { l: loop }, droppedA.observer);
  await startDaemon(config, { l: loop }, droppedB.observer);
  const ids = Array.from({ length: 200 }, (_, i) => `l${i}`);
  await Promise.all(ids.map((id) => scheduler.publish('l', {}, { id, delay: 1000 })));
  // Every id runs at least twice (the loop is going), then half are cancelled.
  await waitFor(() => ids.every((id) => (runsById(recorder).get(id) ?? 0) >= 2), 30_000, 'every id to loop twice');
  const cancelled = ids.filter((_, i) => i % 2 === 1);
  await scheduler.cancel(cancelled);
  const cancelledAt = Date.now();
  // A run in flight at the cancel finishes; nothing of a cancelled id starts after it.
  await sleep(4000);
  const late = recorder.runs.filter((r) => cancelled.includes(r.id) && r.startedAt > cancelledAt + 200);
  expect(late).toEqual([]);
  expect(droppedA.count + droppedB.count).toBeGreaterThanOrEqual(cancelled.length);
  // The others keep looping.
  const before = runsById(recorder);
  await sleep(2500);
  const after = runsById(recorder);
  expect(ids.filter((id) => !cancelled.includes(id) && (after.get(id) ?? 0) <= (before.get(id) ?? 0))).toEqual([]);
});

test('replace: the new body runs, the old never; a publish after a cancel runs', async () => {
  const { config } = namespaceWith({ lanes: [{ name: 'r', concurrency: 10 }] });
  const scheduler = await schedulerWithStream(config);
  const recorder = new Recorder();
  await startDaemon(config, { r: recorder.wrap() });
  await scheduler.publish('r', { v: 'old' }, { id: 'x', delay: 2000 });
  await scheduler.publish('r', { v: 'new' }, { id: 'x', delay: 3000, replace: true });
  await scheduler.publish('r', { v: 'gone' }, { id: 'y', delay: 2000 });
  await scheduler.cancel('y');
  await scheduler.publish('r', { v: 'again' }, { id: 'y', delay: 1000 });
  await expect(scheduler.publish('r', {}, { replace: true })).rejects.toMatchObject({ code: 'BAD_ID' });
  await waitFor(() => recorder.count >= 2, 15_000, 'the replacement and the re-publish to run');
  await sleep(2000);
  expect(recorder.runs.map((r) => `${r.id}:${r.body}`).sort()).toEqual(['x:{"v":"new"}', 'y:{"v":"again"}']);
});

test('a long delay travels in hops that end in the lane: a cancel made meanwhile drops the copy there; the others are sent on and run once, at their due time', async () => {
  // A delay longer than half the retention is published as a hop (delay/waypoints.ts), which
  // at the smallest retention is still 29 s: here the hops are written as orbit writes them,
  // already at their lane, with their final due 3 s ahead (unit tests cover the publisher's side).
  const { config } = namespaceWith({ lanes: [{ name: 'w', concurrency: 20 }] });
  const scheduler = await schedulerWithStream(config);
  const recorder = new Recorder();
  const dropped = cancelCounter();
  await startDaemon(config, { w: recorder.wrap() }, dropped.observer);
  const dueAt = Date.now() + 3000;
  const ids = Array.from({ length: 20 }, (_, i) => `w${i}`);
  const cancelled = ids.filter((_, i) => i % 4 === 0);
  await scheduler.cancel(cancelled);
  // The hops were published before the cancel (generation 1).
  await sendToLane(config.namespace, 'w', ids.map((id) => ({ id, dueAt, runs: 3, generation: 1, headers: { [HEADER.waypoint]: 1 } })));
  await waitFor(() => dropped.count >= cancelled.length, 10_000, 'the cancelled hops to be dropped at the lane');
  // Sent on, not run: nothing ran before its due time.
  expect(recorder.count).toBe(0);
  await waitFor(() => recorder.count >= ids.length - cancelled.length, 15_000, 'the others to run at their due time');
  await sleep(1000);
  const runs = runsById(recorder);
  expect(cancelled.filter((id) => runs.has(id))).toEqual([]);
  expect(ids.filter((id) => !cancelled.includes(id) && runs.get(id) !== 1)).toEqual([]);
  for (const r of recorder.runs) {
    expect(r.startedAt).toBeGreaterThanOrEqual(dueAt - brokerClockSlackMs(3000));
    // Its state came through the hop unchanged, and the mark did not.
    expect(r).toMatchObject({ dueAt, runs: 3, attempt: 0, early: false });
    expect(r.headers[HEADER.waypoint]).toBeUndefined();
  }
  expect(dropped.count).toBe(cancelled.length);
});
