/**
 * `delay.hold` against the real broker (`worker/rung-holder.ts`): the daemon consumes its
 * short rungs, holds each message until due and runs it from there. Runs are never early and
 * within their bound; a stop sends what is held on, and a lost connection returns it to its
 * rung: nothing is lost either way.
 *
 * Three intervals (1, 1.5 and 2 s), so three rungs, each consumed as soon as the daemon
 * knows it, and at most 35 messages in one rung at a time, below the holder's prefetch (50):
 * after the first generation every run is held.
 */
import { createHash } from 'node:crypto';
import { reschedule, type Handler, type ResolvedConfig } from '../../src';
import { allowedLatenessMs } from '../../src/delay/ladder';
import { closeOrbitConnections, rabbitmqctl } from '../helpers/broker';
import { brokerClockSlackMs } from '../helpers/broker-clock';
import { connectTestScheduler, namespaceFor, startTestDaemon } from '../helpers/harness';
import { Cleanup, Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const TOLERANCE = 0.05;
const UNIT_MS = 10;
/** The broker's and the machine's share beyond the bound (as test/integration/ladder.test.ts allows). */
const SLACK_MS = 750;
const INTERVALS = [1000, 1500, 2000];

function interval(id: string): number {
  return INTERVALS[createHash('sha1').update(id).digest().readUInt32BE(0) % INTERVALS.length]!;
}

const settings = (extra: Record<string, unknown> = {}) => ({
  delay: { unit: `${UNIT_MS}ms`, levels: 16, tolerance: TOLERANCE, hold: '10s' },
  lanes: [{ name: 'a', concurrency: 50, bundle: { max: 1 } }],
  ...extra,
});

const start = (config: ResolvedConfig, handler: Handler) => startTestDaemon(cleanup, { config, handlers: { a: handler } });

/** This namespace's rungs that have a holder's consumer on them. */
async function heldRungs(ns: string): Promise<string[]> {
  const out = await rabbitmqctl('-q', 'list_consumers', 'queue_name', 'consumer_tag', '--no-table-headers');
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([queue, tag]) => queue?.startsWith(`${ns}.wait:`) && tag?.startsWith('orbit-hold:'))
    .map(([queue]) => queue!);
}

/**
 * A daemon of a fresh namespace, and `ids` messages published to it with `delayMs`, once
 * the holder consumes their rung (from its next scan on) and holds them: not yet due.
 */
async function holding(prefix: string, ids: number, delayMs: number) {
  const { ns, config } = namespaceFor(cleanup, prefix, settings());
  const recorder = new Recorder();
  const daemon = await start(config, recorder.wrap());
  const scheduler = await connectTestScheduler(cleanup, config);
  const sent = await Promise.all(Array.from({ length: ids }, (_, i) => scheduler.publish('a', { i }, { delay: delayMs })));
  await waitFor(async () => (await heldRungs(ns)).length === 1, 5_000, 'the rung consumed');
  await sleep(400);
  return { ns, config, recorder, daemon, sent };
}

function heldTotal(text: string): number {
  return Number(/orbit_held_total\{lane="a"\} (\d+)/.exec(text)?.[1] ?? 0);
}

test('90 ids rescheduled twice each run 3 times, from their rungs, never early, within due + τ × delay + unit', async () => {
  const { ns, config } = namespaceFor(cleanup, 'hold', settings());
  const IDS = 90;
  const recorder = new Recorder();
  const daemon = await start(config, recorder.wrap((m) => (m.runs < 2 ? reschedule({ delay: interval(m.id) }) : undefined)));
  const scheduler = await connectTestScheduler(cleanup, config);
  const ids = Array.from({ length: IDS }, (_, i) => `id-${i}`);
  const sent = new Map<string, number>();
  await Promise.all(ids.map(async (id) => sent.set(id, (await scheduler.publish('a', { id }, { id, delay: interval(id) })).dueAt.getTime())));

  await waitFor(() => recorder.count >= 3 * IDS, 30_000, `${3 * IDS} runs`);
  // Every rung is consumed. Waited for, as `list_consumers` may show a consumer a moment
  // late (CI on 4.0 once listed 1 of the 3 right after the last run); the message names
  // those it found.
  let rungs: string[] = [];
  await waitFor(async () => (rungs = await heldRungs(ns)).length === INTERVALS.length, 10_000, `the holder to consume all ${INTERVALS.length} rungs`, 500).catch((err: Error) => {
    throw new Error(`${err.message}; consumed: ${rungs.join(', ') || 'none'}`);
  });
  await sleep(300);
  const runs = recorder.byId();
  for (const id of ids) expect((runs.get(id) ?? []).map((r) => r.runs)).toEqual([0, 1, 2]);
  for (const r of recorder.runs) {
    const delay = interval(r.id);
    expect(r.early).toBe(false);
    expect(r.startedAt).toBeGreaterThanOrEqual(r.dueAt - brokerClockSlackMs(delay));
    expect(r.startedAt - r.dueAt).toBeLessThanOrEqual(allowedLatenessMs(delay, TOLERANCE, UNIT_MS) + SLACK_MS);
  }
  // The first generation may expire into the lane before the holder consumes its rung (the
  // scheduler declared it; the daemon finds it when it declares it itself, or on a delivery
  // out of it). The two after it go to rungs the daemon declared, consumed as they became
  // known, each holding at most 35 messages at a time: below the holder's prefetch (50).
  const held = heldTotal(await daemon.metrics.registry.metrics());
  if (process.env.ORBIT_TEST_VERBOSE) console.log(`held ${held} of ${3 * IDS} runs`);
  expect(held).toBeGreaterThanOrEqual(2 * IDS);
  expect(held).toBeLessThanOrEqual(3 * IDS);
}, 60_000);

test('a stop sends what it holds on for the rest of its delay: the next daemon runs every message once, on time', async () => {
  const IDS = 40;
  const DELAY_MS = 4000;
  const { config, recorder: first, daemon, sent } = await holding('hold-stop', IDS, DELAY_MS);
  await daemon.stop();
  expect(first.count).toBe(0);
  // Sent on, each once, rather than handed back (which a 3.10 quorum rung would expire late).
  const forwarded = /orbit_published_total\{kind="forward"\} (\d+)/.exec(await daemon.metrics.registry.metrics())?.[1];
  expect(Number(forwarded)).toBe(IDS);

  const second = new Recorder();
  await start(config, second.wrap());
  await waitFor(() => second.count >= IDS, DELAY_MS + 10_000, `${IDS} runs`);
  await sleep(500);
  expect(second.count).toBe(IDS);
  const runs = second.byId();
  for (const p of sent) {
    const [run, ...extra] = runs.get(p.id) ?? [];
    expect(extra).toHaveLength(0);
    expect(run!.startedAt).toBeGreaterThanOrEqual(p.dueAt.getTime() - brokerClockSlackMs(DELAY_MS));
    // Sent on for the rest of its delay, rounded up to a rung: within its bound, as any message.
    expect(run!.startedAt - p.dueAt.getTime()).toBeLessThanOrEqual(allowedLatenessMs(DELAY_MS, TOLERANCE, UNIT_MS) + SLACK_MS);
  }
}, 60_000);

test('a lost connection returns what the holder held to its rung: every message still runs once, never early', async () => {
  const IDS = 40;
  const DELAY_MS = 3000;
  const { ns, recorder, sent } = await holding('hold-lost', IDS, DELAY_MS);
  // The consume connection carries the holder's channel: closed, its deliveries go back.
  expect(await closeOrbitConnections(ns, 'consume')).toBe(1);
  // Late, perhaps (RabbitMQ 3.10 puts a message returned to a quorum queue behind the
  // others), but run: once each, and never before its due time.
  await waitFor(() => recorder.count >= IDS, DELAY_MS + 20_000, `${IDS} runs`);
  await sleep(500);
  const runs = recorder.byId();
  expect(runs.size).toBe(IDS);
  for (const p of sent) {
    const list = runs.get(p.id) ?? [];
    expect(list).toHaveLength(1);
    expect(list[0]!.startedAt).toBeGreaterThanOrEqual(p.dueAt.getTime() - brokerClockSlackMs(DELAY_MS));
  }
}, 60_000);

test('held messages that fell due wait for a slot by priority: a more urgent message that comes after them runs first', async () => {
  const LOW = 10;
  const DELAY_MS = 4000;
  const { ns, config } = namespaceFor(cleanup, 'hold-prio', settings({ lanes: [{ name: 'a', concurrency: 1, bundle: { max: 1 } }] }));
  const recorder = new Recorder();
  // One slot, 300 ms a run: what falls due together waits for the slot in the client.
  await start(config, recorder.wrap(() => sleep(300)));
  const scheduler = await connectTestScheduler(cleanup, config);
  await Promise.all(Array.from({ length: LOW }, (_, i) => scheduler.publish('a', { i }, { id: `low-${i}`, delay: DELAY_MS })));
  await waitFor(async () => (await heldRungs(ns)).length === 1, 5_000, 'the rung consumed');
  await waitFor(() => recorder.count >= 1, DELAY_MS + 5_000, 'the first of them to run');
  // The others fell due within milliseconds of the first: they wait for the slot.
  await sleep(100);
  await scheduler.publish('a', { urgent: true }, { id: 'urgent', priority: 9 });
  await waitFor(() => recorder.count >= LOW + 1, 15_000, 'every run');
  const order = recorder.runs.map((r) => r.id);
  // Next, or the one after (the slot may have been handed on as it arrived) — not behind the
  // nine that waited before it came.
  expect(order.indexOf('urgent')).toBeGreaterThanOrEqual(1);
  expect(order.indexOf('urgent')).toBeLessThanOrEqual(2);
}, 60_000);

test('runs that fell due in the holder keep the lane busy for work-ahead: it takes nothing early while they come', async () => {
  // Work-ahead on: idle after 1 s without a delivery, up to 30 s ahead. Three messages due in
  // 15 s wait in a held rung (published first, so the daemon finds their rung at start). Then
  // 20 ids rescheduled every second, each from its own offset, come from the 1 s rung: a held
  // run about every 50 ms. A lane that did not count held runs as work would look idle and
  // run the far ones early.
  const lane = { name: 'a', concurrency: 50, bundle: { max: 1 }, workAhead: { idle: '1s', maxAdvance: '30s', maxRate: 100 } };
  const { config } = namespaceFor(cleanup, 'hold-busy', settings({ delay: { unit: `${UNIT_MS}ms`, levels: 16, tolerance: TOLERANCE, hold: '30s' }, lanes: [lane] }));
  const scheduler = await connectTestScheduler(cleanup, config);
  const far = await Promise.all([0, 1, 2].map((i) => scheduler.publish('a', { i }, { id: `far-${i}`, delay: 15_000 })));
  const recorder = new Recorder();
  let looping = true;
  await start(
    config,
    recorder.wrap(async (message) => (looping && message.id.startsWith('loop-') ? reschedule({ delay: 1000 }) : undefined)),
  );
  for (let i = 0; i < 20; i++) {
    await scheduler.publish('a', { i }, { id: `loop-${i}` });
    await sleep(50);
  }
  await sleep(6000);
  const early = recorder.runs.filter((r) => r.early).map((r) => r.id);
  const loopRuns = recorder.runs.filter((r) => r.id.startsWith('loop-')).length;
  looping = false;
  // The loop ran all along (about 20 runs a second), and nothing ran early.
  expect(loopRuns).toBeGreaterThanOrEqual(20 * 5);
  expect(early).toEqual([]);
  // Once the loop ends the lane is idle, and work-ahead takes the far ones from the holder, early.
  await waitFor(() => far.every((f) => recorder.byId().has(f.id)), 10_000, 'the far messages, early');
  for (const f of far) expect(recorder.byId().get(f.id)![0]!.early).toBe(true);
}, 40_000);
