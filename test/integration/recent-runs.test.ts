/**
 * Copies of settled runs (`worker/recent-runs.ts`): a broker crash can deliver again a
 * message whose run settled (its ack forgotten, or a dead-letter re-sent); the daemon drops
 * such a copy instead of running it and rescheduling it next to its replacement. Here the
 * copies are published as the broker would hand them back: the very message, state and all.
 */
import { reschedule, type WorkerObserver } from '../../src';
import { sendToLane } from '../helpers/broker';
import { namespaceFor, startTestDaemon } from '../helpers/harness';
import { Cleanup, Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Counts the copies the daemon dropped, and the runs it settled. */
function copyCounter(): { observer: WorkerObserver; readonly count: number; readonly settled: number } {
  let count = 0;
  let settled = 0;
  return {
    observer: { copyDropped: () => count++, messageSettled: () => settled++ },
    get count() {
      return count;
    },
    get settled() {
      return settled;
    },
  };
}

function copiesDropped(text: string): number {
  return Number(/orbit_copies_dropped_total\{lane="w"\} (\d+)/.exec(text)?.[1] ?? Number.NaN);
}

test('a copy of a settled run is dropped, not run; the same id due at another time, or without a generation, runs', async () => {
  const { ns, config } = namespaceFor(cleanup, 'copies', { lanes: [{ name: 'w', concurrency: 10 }] });
  const recorder = new Recorder();
  const copies = copyCounter();
  const daemon = await startTestDaemon(cleanup, { config, handlers: { w: recorder.wrap() }, observer: copies.observer });
  const dueAt = Date.now();
  const original = { id: 'c1', dueAt, runs: 0, generation: dueAt + 0.5 };
  await sendToLane(ns, 'w', [original]);
  await waitFor(() => copies.settled >= 1, 10_000, 'the original to run and settle');
  await sendToLane(ns, 'w', [original, original]);
  await waitFor(() => copies.count >= 2, 10_000, 'the copies to be dropped');
  // Not copies: the same id and generation due a millisecond later, and a message without a
  // generation (which cannot be named exactly), twice.
  await sendToLane(ns, 'w', [{ ...original, dueAt: dueAt + 1 }, { id: 'n1', dueAt, runs: 0, generation: 0 }]);
  await waitFor(() => recorder.count >= 3, 10_000, 'the other two to run');
  await sleep(300);
  await sendToLane(ns, 'w', [{ id: 'n1', dueAt, runs: 0, generation: 0 }]);
  await waitFor(() => recorder.count >= 4, 10_000, 'the message without a generation to run again');
  await sleep(500);
  expect(recorder.runs.map((r) => `${r.id}@${r.dueAt - dueAt}`).sort()).toEqual(['c1@0', 'c1@1', 'n1@0', 'n1@0']);
  expect(copies.count).toBe(2);
  expect(copiesDropped(await daemon.metrics.registry.metrics())).toBe(2);
});

test('a copy of a rescheduled run, delivered after its replacement was confirmed, is dropped; the replacement runs once', async () => {
  const { ns, config } = namespaceFor(cleanup, 'copies', { lanes: [{ name: 'w', concurrency: 10 }] });
  const recorder = new Recorder();
  const copies = copyCounter();
  // Run 0 reschedules 1.5 s on; run 1 is the last.
  await startTestDaemon(cleanup, { config, handlers: { w: recorder.wrap((m) => (m.runs === 0 ? reschedule({ delay: 1500 }) : undefined)) }, observer: copies.observer });
  const dueAt = Date.now();
  const ids = Array.from({ length: 20 }, (_, i) => `r${i}`);
  const originals = ids.map((id, i) => ({ id, dueAt, runs: 0, generation: dueAt + i / 100 }));
  await sendToLane(ns, 'w', originals);
  await waitFor(() => copies.settled >= ids.length, 15_000, 'the originals to run and their replacements to be confirmed');
  // Every original's replacement is confirmed and waits in its rung: the broker hands the
  // originals out again, as a crash that forgot their acks would.
  await sendToLane(ns, 'w', originals);
  await waitFor(() => copies.count >= ids.length, 10_000, 'the copies to be dropped');
  await waitFor(() => recorder.count >= 2 * ids.length, 15_000, 'the replacements to run');
  await sleep(2000);
  const runs = recorder.runs.map((r) => `${r.id}:${r.runs}`).sort();
  expect(runs).toEqual(ids.flatMap((id) => [`${id}:0`, `${id}:1`]).sort());
  expect(copies.count).toBe(ids.length);
});
