/**
 * The delay ladder (`delay.tolerance` > 0) against the real broker: every message waits in
 * one rung and runs within its bound, never early; bundles fill with per-message intervals
 * and lose or repeat nothing; a namespace that still holds messages in the binary levels
 * drains them after the switch.
 *
 * Time is compressed: a unit of 1 ms makes the ladder's rungs milliseconds, so a range of
 * delays as wide as 1 s to 1 day (ratio 86,400) fits in seconds.
 */
import { createHash } from 'node:crypto';
import { reschedule, type Handler, type ResolvedConfig } from '../../src';
import { BrokerSession } from '../../src/publish/session';
import { allowedLatenessMs, ladderRungs, rungIndex } from '../../src/delay/ladder';
import { silentLogger } from '../../src/logging/logger';
import { collectStats } from '../../src/stats/collect';
import { renderStats } from '../../src/stats/render';
import { names } from '../../src/naming/names';
import { rabbitmqctl, withChannel } from '../helpers/broker';
import { connectTestScheduler, namespaceFor, startTestDaemon, type TestNamespace } from '../helpers/harness';
import { Cleanup, Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';
import { brokerClockSlackMs } from '../helpers/broker-clock';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const namespaceWith = (settings: Record<string, unknown>): TestNamespace => namespaceFor(cleanup, 'ladder', settings);
const startDaemon = (config: ResolvedConfig, handlers: Record<string, Handler>) => startTestDaemon(cleanup, { config, handlers });

/**
 * What the broker adds beyond the bound once a message is in its rung: expiring the head
 * (the queue's TTL timer), dead-lettering, routing and delivery, on a 2-core machine that
 * runs other suites at once. Measured here in tens of ms; this is the allowance, not a target.
 * Time spent before the message reached its rung (the publish: the first one to a rung waits
 * for the rung's declare, hundreds at once in this test) is measured per message instead.
 */
const BROKER_SLACK_MS = 750;

/** A stable pseudo-random fraction in [0, 1) from a string. */
function fraction(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0) / 2 ** 32;
}

/** Rung queues of a namespace that exist on the broker, with their arguments. */
async function rungQueues(ns: string): Promise<string[]> {
  const out = await rabbitmqctl('-q', 'list_queues', 'name', 'arguments', '--no-table-headers');
  return out.split('\n').filter((l) => l.startsWith(`${ns}.wait:`));
}

describe.each(['classic', 'quorum'] as const)('the ladder on %s delay queues', (queueType) => {
  // Every rung is a queue, and on RabbitMQ 3.x each queue holds file handles: with the shared
  // broker's default limit (1,024) a few hundred queues at once stop it from taking
  // connections. So a coarse ladder (about 90 rungs; about 40 on quorum, where each queue is
  // also a Raft cluster of its own and costly to declare and delete), over the same range.
  const COUNT = queueType === 'classic' ? 1000 : 200;
  const tolerance = queueType === 'classic' ? 0.2 : 0.5;

  test(`${COUNT} delays spread log-uniformly over a ratio of 86,400 each run once, never early, within due + τ × delay + unit`, async () => {
    const { ns, config } = namespaceWith({
      delay: { unit: '1ms', levels: 20, tolerance, queueType },
      lanes: [{ name: 'a', concurrency: 64 }],
    });
    const recorder = new Recorder();
    await startDaemon(config, { a: recorder.wrap() });
    const scheduler = await connectTestScheduler(cleanup, config);

    // 0.125 ms … 10.8 s: "1 s to 1 day" at 1 ms = 8 s.
    const delays = Array.from({ length: COUNT }, (_, i) => Math.round(0.125 * 86_400 ** fraction(`${ns}:${i}`)));
    // Due times spread evenly over SPREAD_MS, each message published its delay before: the
    // bound is for a lane that keeps up. Published all at once, ~80 % of them (delays under
    // 1 s, log-uniform) would fall due within the first second and queue at the daemon, late
    // by its backlog on a loaded machine rather than by anything of the delay path.
    const SPREAD_MS = 10_000;
    const firstDue = Date.now() + 10_800 + 200;
    const sent = await Promise.all(
      delays.map(async (delay, i) => {
        await sleep(Math.max(0, firstDue + (SPREAD_MS * i) / COUNT - delay - Date.now()));
        const before = Date.now();
        const p = await scheduler.publish('a', { i }, { delay });
        return { ...p, delay, publishMs: Date.now() - before };
      }),
    );

    await waitFor(() => recorder.count >= COUNT, 10_800 * (1 + tolerance) + SPREAD_MS + 20_000, `${COUNT} runs`);
    await sleep(300);
    expect(recorder.count).toBe(COUNT);
    const runs = recorder.byId();
    let worst = 0;
    for (const p of sent) {
      const [run, ...extra] = runs.get(p.id) ?? [];
      expect(extra).toHaveLength(0);
      const late = run!.startedAt - p.dueAt.getTime();
      expect(run!.early).toBe(false);
      expect(late).toBeGreaterThanOrEqual(-brokerClockSlackMs(p.delay * (1 + tolerance) + 1));
      expect(late).toBeLessThanOrEqual(allowedLatenessMs(p.delay, tolerance, 1) + p.publishMs + BROKER_SLACK_MS);
      worst = Math.max(worst, late - allowedLatenessMs(p.delay, tolerance, 1) - p.publishMs);
    }
    if (process.env.ORBIT_TEST_VERBOSE) console.log(`${queueType}: worst lateness beyond the bound ${worst} ms`);

    // One queue per rung used, each with a TTL, the deliver exchange and an expiry; no binary levels.
    const rungs = await rungQueues(ns);
    expect(rungs.length).toBeGreaterThan(queueType === 'classic' ? 50 : 20);
    for (const line of rungs) expect(line).toMatch(/x-expires/);
    const levels = (await rabbitmqctl('-q', 'list_queues', 'name', '--no-table-headers')).split('\n').filter((l) => l.startsWith(`${ns}.delay.`));
    expect(levels).toEqual([]);
  }, 90_000);
});

test('10,000 ids on a bundled lane, each with its own interval, rescheduled 3 times, run exactly 4 times each, in full bundles', async () => {
  const { config } = namespaceWith({
    delay: { unit: '10ms', levels: 16, tolerance: '5%' },
    lanes: [{ name: 'b', concurrency: 200, bundle: { max: 100, linger: '50ms' } }],
  });
  const IDS = 10_000;
  // Intervals 1–4 s by id: about 130 rungs, so bundles fill only by waiting within the tolerance.
  const interval = (id: string) => 1000 + Math.floor(3000 * fraction(id));
  const recorder = new Recorder();
  // What each run's bound allowed, as the daemon read it from the bundle (per entry).
  const allowances: (number | undefined)[] = [];
  const daemon = await startTestDaemon(cleanup, {
    config,
    handlers: { b: recorder.wrap((m) => (m.runs < 3 ? reschedule({ delay: interval(m.id) }) : undefined)) },
    observer: { handlerStarted: (_lane, _late, _early, allowedMs) => allowances.push(allowedMs) },
  });
  const scheduler = await connectTestScheduler(cleanup, config);
  const ids = Array.from({ length: IDS }, (_, i) => `id-${i}`);
  await Promise.all(ids.map((id) => scheduler.publish('b', { id }, { id, delay: interval(id) })));

  await waitFor(() => recorder.count >= 4 * IDS, 60_000, `${4 * IDS} runs`);
  await sleep(1500);
  const runs = recorder.byId();
  expect(runs.size).toBe(IDS);
  for (const id of ids) expect((runs.get(id) ?? []).map((r) => r.runs)).toEqual([0, 1, 2, 3]);
  for (const r of recorder.runs) expect(r.startedAt).toBeGreaterThanOrEqual(r.dueAt - brokerClockSlackMs(4000 * 1.02));

  // Bundles filled: the lane decoded far fewer deliveries than it ran messages.
  const text = await daemon.metrics.registry.metrics();
  const count = Number(/orbit_bundle_size_count\{lane="b"\} (\d+)/.exec(text)?.[1]);
  const sum = Number(/orbit_bundle_size_sum\{lane="b"\} (\d+)/.exec(text)?.[1]);
  if (process.env.ORBIT_TEST_VERBOSE) console.log(`bundles: ${count} deliveries, ${sum} messages, ${(sum / count).toFixed(1)} per delivery`);
  expect(sum).toBe(4 * IDS);
  expect(sum / count).toBeGreaterThan(10);

  // Every run carried its own bound through the broker, in its bundle: τ × its interval + unit
  // + linger (the allowances differ within a bundle, so a shared one would not match).
  expect(allowances).toHaveLength(4 * IDS);
  const expected = new Map<number, number>();
  for (const id of ids) {
    const allowed = allowedLatenessMs(interval(id), 0.05, 10, 50);
    expected.set(allowed, (expected.get(allowed) ?? 0) + 4);
  }
  const seen = new Map<number, number>();
  for (const a of allowances) seen.set(a ?? -1, (seen.get(a ?? -1) ?? 0) + 1);
  expect(seen).toEqual(expected);
  expect(Number(/orbit_lateness_bound_ratio_count\{lane="b"\} (\d+)/.exec(text)?.[1])).toBe(4 * IDS);
}, 120_000);

test('a lane behind a backlog shows its runs past their bound in orbit_lateness_bound_ratio', async () => {
  const { config } = namespaceWith({
    delay: { unit: '10ms', levels: 16, tolerance: 0 },
    lanes: [{ name: 'slow', concurrency: 1, bundle: { max: 1 } }],
  });
  const recorder = new Recorder();
  // One at a time, 50 ms each: the k-th of 20 messages due together starts about k × 50 ms
  // after its due time, far past its bound of one unit (10 ms).
  const daemon = await startDaemon(config, { slow: recorder.wrap(() => sleep(50)) });
  const scheduler = await connectTestScheduler(cleanup, config);
  await Promise.all(Array.from({ length: 20 }, (_, i) => scheduler.publish('slow', { i })));
  await waitFor(() => recorder.count >= 20, 20_000, '20 runs');
  await sleep(100);
  const text = await daemon.metrics.registry.metrics();
  const bucket = (le: string) => Number(new RegExp(`orbit_lateness_bound_ratio_bucket\\{lane="slow",le="${le}"\\} (\\d+)`).exec(text)?.[1]);
  expect(Number(/orbit_lateness_bound_ratio_count\{lane="slow"\} (\d+)/.exec(text)?.[1])).toBe(20);
  // At most the first ran within its bound; every later one waited ≥ 50 ms for a slot: ≥ 5 × its allowance.
  expect(bucket('1')).toBeLessThanOrEqual(1);
  expect(bucket('2')).toBeLessThanOrEqual(1);
  const late = recorder.runs.map((r) => r.startedAt - r.dueAt).sort((a, b) => a - b);
  expect(late[1]).toBeGreaterThanOrEqual(40);
}, 60_000);

test('switching a namespace from the binary levels to the ladder drains the messages resting in the levels, none early', async () => {
  const { ns, config: binary } = namespaceWith({ delay: { unit: '100ms', levels: 8, tolerance: 0 }, lanes: [{ name: 'a', concurrency: 16 }] });
  const old = await connectTestScheduler(cleanup, binary);
  const resting = await Promise.all(Array.from({ length: 60 }, (_, i) => old.publish('a', { i }, { delay: 5000 + 100 * (i % 30) })));
  await old.close();
  // The same namespace, now with a tolerance: the levels are no longer declared, but drain,
  // and `orbit stats` shows them.
  const ladder = { ...binary, delay: { ...binary.delay, tolerance: 0.02 } } as ResolvedConfig;
  const session = await BrokerSession.open(ladder, 'cli', silentLogger());
  cleanup.add(() => session.close());
  const before = await collectStats(session, ladder);
  expect(before.levels.filter((l) => l.level !== undefined).reduce((n, l) => n + l.messages, 0)).toBe(resting.length);
  expect(before.notes.join('\n')).toMatch(/binary delay levels of an earlier layout/);
  expect(renderStats(before)).toMatch(/DELAY LADDER  tolerance 2%  0 rung queues in use of \d+/);
  const recorder = new Recorder();
  await startDaemon(ladder, { a: recorder.wrap((m) => (m.runs === 0 ? reschedule({ delay: 500 }) : undefined)) });
  await waitFor(() => recorder.count >= 2 * resting.length, 15_000, `${2 * resting.length} runs`);
  const runs = recorder.byId();
  for (const p of resting) {
    const [first, second] = runs.get(p.id) ?? [];
    expect(first!.startedAt).toBeGreaterThanOrEqual(p.dueAt.getTime() - brokerClockSlackMs(8000));
    // The second run came through the ladder: one rung of 500 ms.
    expect(second!.startedAt).toBeGreaterThanOrEqual(second!.dueAt - brokerClockSlackMs(500));
  }
  const rungs = await rungQueues(ns);
  expect(rungs.map((l) => l.split(/\s/)[0])).toEqual([names(ns).rung(500)]);
  const after = await collectStats(session, ladder);
  expect(after.levels.filter((l) => l.level === undefined).map((l) => l.queue)).toEqual([names(ns).rung(500)]);
  expect(renderStats(after, { allLevels: true })).toMatch(/1 rung queue in use of \d+/);
}, 60_000);

test('quorum delay queues: a normal-priority message is not held up by high-priority ones that came after it', async () => {
  const { config } = namespaceWith({
    delay: { unit: '10ms', levels: 16, tolerance: '2%', queueType: 'quorum' },
    lanes: [{ name: 'p', concurrency: 50, maxPriority: 9 }],
  });
  const recorder = new Recorder();
  await startDaemon(config, { p: recorder.wrap() });
  const scheduler = await connectTestScheduler(cleanup, config);
  // One priority-0 message, then from 2 s on a priority-9 one every 100 ms, all 3 s ahead:
  // in one RabbitMQ 4.x quorum queue the high ones are served and expired first, so the
  // normal one would wait for the first high one behind it, 2 s (measured with one queue:
  // 1.1 s late when the gap was 1 s).
  const normal = await scheduler.publish('p', 'normal', { delay: 3000, priority: 0 });
  const publishMs = Date.now() - normal.dueAt.getTime() + 3000;
  await sleep(2000);
  for (let i = 0; i < 30; i++) {
    await scheduler.publish('p', `high-${i}`, { delay: 3000, priority: 9 });
    await sleep(100);
  }
  await waitFor(() => recorder.count >= 31, 10_000, '31 runs');
  const run = recorder.byId().get(normal.id)![0]!;
  const late = run.startedAt - normal.dueAt.getTime();
  expect(late).toBeGreaterThanOrEqual(-brokerClockSlackMs(3000 * 1.02));
  expect(late).toBeLessThanOrEqual(allowedLatenessMs(3000, 0.02, 10) + publishMs + BROKER_SLACK_MS);
}, 60_000);


// `held`: the rungs of 20–40 s are consumed by the daemon's rung holder (delay.hold), and
// work-ahead takes what it holds (RungHolder.takeEarly); else it fetches from the rungs.
test.each([
  ['from the broker', '0s'],
  ['held by the daemon (delay.hold)', '1m'],
])('work-ahead on the ladder: a daemon finds the rungs others declared and takes their soonest-due messages early, flagged, within maxAdvance: %s', async (_how, hold) => {
  const { ns, config } = namespaceWith({
    delay: { unit: '100ms', levels: 16, tolerance: '2%', hold },
    lanes: [{ name: 'w', concurrency: 8, workAhead: { idle: '200ms', maxAdvance: '30s', maxRate: 100 } }],
  });
  // Published before any daemon runs: rungs of 20–40 s and one of 10 min, declared by the Scheduler.
  const scheduler = await connectTestScheduler(cleanup, config);
  const soon = await Promise.all(Array.from({ length: 20 }, (_, i) => scheduler.publish('w', `s${i}`, { delay: 20_000 + 1000 * i })));
  const far = await scheduler.publish('w', 'far', { delay: 600_000 });
  const recorder = new Recorder();
  await startDaemon(config, { w: recorder.wrap() });

  await waitFor(() => recorder.count >= soon.length, 20_000, `${soon.length} early runs`);
  for (const run of recorder.runs) {
    expect(run.early).toBe(true);
    expect(run.dueAt - run.startedAt).toBeLessThanOrEqual(30_000 + 1000);
  }
  await sleep(1000);
  // Due in 10 min: more than maxAdvance ahead, handed back to its rung, not run.
  expect(recorder.byId().has(far.id)).toBe(false);
  // Held: the holder consumed the soon rungs (one message each, within its prefetch), so what
  // ran early came from its hands, not from a fetch.
  const rungs = ladderRungs(0.02, 2 ** 16 - 1);
  const rungOf = (ms: number) => names(ns).rung(rungs[rungIndex(rungs, Math.ceil(ms / 100))]! * 100);
  const consumers = await withChannel(async (ch) => Promise.all([20_000, 39_000].map(async (ms) => (await ch.checkQueue(rungOf(ms))).consumerCount)));
  expect(consumers).toEqual(hold === '0s' ? [0, 0] : [1, 1]);
}, 60_000);

test('a rung declared with other arguments (another delay.queueType) is used as it is: a passive check, then the publish', async () => {
  const { ns, config } = namespaceWith({ delay: { unit: '100ms', tolerance: '2%', queueType: 'quorum' }, lanes: [{ name: 'a' }] });
  // Another publisher (delay.queueType classic) made the 1 s rung first.
  const rung = names(ns).rung(1000, false);
  await withChannel(async (ch) => {
    await ch.assertQueue(rung, { durable: true, arguments: { 'x-queue-type': 'classic', 'x-message-ttl': 1000, 'x-dead-letter-exchange': names(ns).deliver, 'x-expires': 3_601_000 } });
  });
  const recorder = new Recorder();
  await startDaemon(config, { a: recorder.wrap() });
  const scheduler = await connectTestScheduler(cleanup, config);
  const started = Date.now();
  await scheduler.publish('a', { x: 1 }, { id: 'drift', delay: 1000 });
  await waitFor(() => recorder.count === 1, 10_000, 'the message to run through the classic rung');
  expect(recorder.runs[0]!.startedAt - started).toBeGreaterThanOrEqual(1000 - brokerClockSlackMs(1000));
  // Still the classic queue another publisher declared: used, not redeclared.
  expect((await rungQueues(ns)).join('\n')).toContain('classic');
});

test('lanes with tolerances of their own: each rounds up to its own ladder, runs within its own bound, never early', async () => {
  const { ns, config } = namespaceWith({
    delay: { unit: '50ms', levels: 16, tolerance: '20%', queueType: 'classic' },
    lanes: [
      { name: 'fine', concurrency: 32 },
      { name: 'coarse', concurrency: 32, tolerance: '100%' },
    ],
  });
  const recorder = new Recorder();
  const allowances = new Map<string, number | undefined>();
  await startTestDaemon(cleanup, {
    config,
    handlers: { fine: recorder.wrap(), coarse: recorder.wrap() },
    observer: { handlerStarted: (lane, _late, _early, allowedMs) => void allowances.set(lane, Math.max(allowances.get(lane) ?? 0, allowedMs ?? NaN)) },
  });
  const scheduler = await connectTestScheduler(cleanup, config);
  const COUNT = 80;
  // 0.5–8 s, log-uniform by hash: 10–160 units.
  const delays = Array.from({ length: COUNT }, (_, i) => Math.round(500 * 16 ** fraction(`${ns}:${i}`)));
  const sent = await Promise.all(
    (['fine', 'coarse'] as const).flatMap((lane) =>
      delays.map(async (delay) => {
        const before = Date.now();
        const p = await scheduler.publish(lane, { delay }, { delay });
        return { ...p, lane, delay, publishMs: Date.now() - before };
      }),
    ),
  );
  await waitFor(() => recorder.count >= 2 * COUNT, 8000 * 2 + 20_000, `${2 * COUNT} runs`);
  await sleep(300);
  expect(recorder.count).toBe(2 * COUNT);
  const runs = recorder.byId();
  const tolerance = { fine: 0.2, coarse: 1 };
  for (const p of sent) {
    const [run, ...extra] = runs.get(p.id) ?? [];
    expect(extra).toHaveLength(0);
    const late = run!.startedAt - p.dueAt.getTime();
    expect(run!.early).toBe(false);
    expect(late).toBeGreaterThanOrEqual(-brokerClockSlackMs(p.delay * (1 + tolerance[p.lane]) + 50));
    expect(late).toBeLessThanOrEqual(allowedLatenessMs(p.delay, tolerance[p.lane], 50) + p.publishMs + BROKER_SLACK_MS);
  }
  // Each lane's messages carried its own bound: the largest allowance of each is its τ × 8 s + unit.
  expect(allowances.get('fine')).toBeLessThanOrEqual(allowedLatenessMs(8000, 0.2, 50));
  expect(allowances.get('coarse')).toBeGreaterThan(allowedLatenessMs(8000, 0.2, 50));
  // The rungs in use: every one a rung of one of the two ladders, and the coarse lane's ladder
  // used some the fine one does not have.
  const ttls = (await rungQueues(ns)).map((l) => names(ns).rungTtlOf(l.split(/\s/)[0]!)! / 50);
  const fine = new Set(ladderRungs(0.2, 2 ** 16 - 1));
  const coarse = new Set(ladderRungs(1, 2 ** 16 - 1));
  for (const units of ttls) expect(fine.has(units) || coarse.has(units)).toBe(true);
  expect(ttls.some((u) => coarse.has(u) && !fine.has(u))).toBe(true);
  // `orbit stats` names the lane's own tolerance and counts both ladders' rungs.
  const session = await BrokerSession.open(config, 'cli', silentLogger());
  cleanup.add(() => session.close());
  const stats = await collectStats(session, config);
  expect(stats.ladderRungs).toBe(new Set([...fine, ...coarse]).size);
  expect(renderStats(stats)).toMatch(/DELAY LADDER  tolerance 20% \(lane coarse 100%\)  \d+ rung queues? in use of \d+/);
}, 60_000);
