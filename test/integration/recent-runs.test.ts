/**
 * Copies of settled runs (`worker/recent-runs.ts`): a broker crash can deliver again a
 * message whose run settled (its ack forgotten, or a dead-letter re-sent); the daemon drops
 * such a copy instead of running it and rescheduling it next to its replacement. Here the
 * copies are published as the broker would hand them back: the very message, state and all,
 * or a fork of it (the same run due at another time: a second replacement).
 */
import { reschedule, type CopyKind, type WorkerObserver } from '../../src';
import { sendToLane } from '../helpers/broker';
import { namespaceFor, startTestDaemon } from '../helpers/harness';
import { Cleanup, Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Counts the copies the daemon dropped (in all, and by kind), and the runs it settled. */
function copyCounter(): { observer: WorkerObserver; readonly count: number; readonly kinds: Record<CopyKind, number>; readonly settled: number } {
  let count = 0;
  let settled = 0;
  const kinds: Record<CopyKind, number> = { exact: 0, fork: 0 };
  return {
    observer: {
      copyDropped: (_lane, kind) => {
        count++;
        kinds[kind]++;
      },
      messageSettled: () => settled++,
    },
    get count() {
      return count;
    },
    kinds,
    get settled() {
      return settled;
    },
  };
}

function copiesDropped(text: string, kind: 'exact' | 'fork'): number {
  const line = text.split('\n').find((l) => l.startsWith('orbit_copies_dropped_total{') && l.includes('lane="w"') && l.includes(`kind="${kind}"`));
  return Number(line?.split(' ').pop() ?? Number.NaN);
}

test('a copy of a settled run is dropped, not run: the very message, or a fork due at another time; a retried run sent back (a replay), or a message without a generation, runs', async () => {
  const { ns, config } = namespaceFor(cleanup, 'copies', { lanes: [{ name: 'w', concurrency: 10 }] });
  const recorder = new Recorder();
  const copies = copyCounter();
  let failed = false;
  // f1's first try fails (retried: attempt 1 follows); everything else is done at once.
  const handler = recorder.wrap((m) => {
    if (m.id === 'f1' && !failed) {
      failed = true;
      throw new Error('first try fails');
    }
    return undefined;
  });
  const daemon = await startTestDaemon(cleanup, { config, handlers: { w: handler }, observer: copies.observer });
  const dueAt = Date.now();
  const original = { id: 'c1', dueAt, runs: 0, generation: dueAt + 0.5 };
  const failing = { id: 'f1', dueAt, runs: 0, generation: dueAt + 0.25 };
  await sendToLane(ns, 'w', [original, failing]);
  await waitFor(() => copies.settled >= 2, 10_000, 'c1 to be done and f1 retried');
  // Copies: c1 twice as it was, and a fork of it (the same run due a millisecond later).
  // Not copies: f1 at attempt 0 again, due later, as `orbit dlq replay` sends a dead letter
  // back (its key matches only the retried attempt); a message without a generation.
  await sendToLane(ns, 'w', [original, original, { ...original, dueAt: dueAt + 1 }, { ...failing, dueAt: dueAt + 5 }, { id: 'n1', dueAt, runs: 0, generation: 0 }]);
  await waitFor(() => copies.count >= 3, 10_000, 'the copies to be dropped');
  await waitFor(() => recorder.runs.filter((r) => r.id === 'f1').length >= 3 && recorder.runs.some((r) => r.id === 'n1'), 15_000, 'f1 retried and replayed, and n1, to run');
  await sendToLane(ns, 'w', [{ id: 'n1', dueAt, runs: 0, generation: 0 }]);
  await waitFor(() => recorder.runs.filter((r) => r.id === 'n1').length >= 2, 10_000, 'the message without a generation to run again');
  await sleep(500);
  const by = recorder.byId();
  expect(by.get('c1')!.map((r) => r.dueAt - dueAt)).toEqual([0]);
  expect(by.get('n1')!.length).toBe(2);
  const f1 = by.get('f1')!;
  expect(f1.map((r) => r.attempt).sort()).toEqual([0, 0, 1]);
  expect(f1.filter((r) => r.attempt === 0).map((r) => r.dueAt - dueAt).sort()).toEqual([0, 5]);
  expect(copies.count).toBe(3);
  const metrics = await daemon.metrics.registry.metrics();
  expect([copiesDropped(metrics, 'exact'), copiesDropped(metrics, 'fork')]).toEqual([2, 1]);
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
  // A fork of each replacement: run 1 again, due 700 ms after it, as a second replacement is
  // when a channel closed under run 0 after the broker took the first. Run 1 was done: dropped.
  const replacements = recorder.runs.filter((r) => r.runs === 1);
  await sendToLane(ns, 'w', replacements.map((r) => ({ id: r.id, dueAt: r.dueAt + 700, runs: 1, generation: dueAt + ids.indexOf(r.id) / 100 })));
  await waitFor(() => copies.count >= 2 * ids.length, 10_000, 'the forks to be dropped');
  await sleep(500);
  expect(recorder.count).toBe(2 * ids.length);
  expect(copies.kinds).toEqual({ exact: ids.length, fork: ids.length });
});
