/**
 * Failure paths against the real broker: retries with backoff, the dead-letter queue and
 * its tooling (API and CLI), unrecoverable errors, timeouts, bad outcomes and bad bodies,
 * garbage headers from foreign publishers, failures in bulk, and a broker that refuses
 * the replacement of a message (the ack-after-confirm invariant).
 *
 * Every test runs in its own random namespace and deletes it (and any policy it set).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import {
  Daemon,
  HandlerTimeoutError,
  Scheduler,
  UnrecoverableError,
  reschedule,
  type Handler,
  type ResolvedConfig,
  type WorkerObserver,
} from '../../src';
import { BrokerSession } from '../../src/publish/session';
import { backoffBounds } from '../../src/delay/backoff';
import { maxDelayMs, routeDelay } from '../../src/delay/routing';
import { names } from '../../src/naming/names';
import { DeadLetterQueue } from '../../src/dlq/dead-letter-queue';
import { createLogger } from '../../src/logging/logger';
import { buildTopology } from '../../src/topology/build';
import { AMQP_URL, deleteNamespace, nonEmptyQueues, queueDepth, rabbitmqctl, randomNamespace, testConfig } from '../helpers/broker';
import { connectTestScheduler, namespaceFor, startTestDaemon, type TestNamespace } from '../helpers/harness';
import { ensureBuilt, runCli } from '../helpers/cli';
import { readDeadLetters, takeDeadLetters } from '../helpers/dead-letters';
import { Cleanup, Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';
import { brokerClockSlackMs } from '../helpers/broker-clock';

/** 100 ms resolution, so retry delays are not rounded up to whole seconds. */
const FINE_DELAY = { unit: '100ms', levels: 12 };
const UNIT_MS = 100;

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A fresh namespace and config; the namespace is deleted after the test. */
const namespaceWith = (prefix: string, settings: Record<string, unknown>): TestNamespace => namespaceFor(cleanup, prefix, settings);
const startDaemon = (config: ResolvedConfig, handlers: Record<string, Handler>, observer?: WorkerObserver): Promise<Daemon> =>
  startTestDaemon(cleanup, { config, handlers, observer });
const connectScheduler = (config: ResolvedConfig): Promise<Scheduler> => connectTestScheduler(cleanup, config);

/** Counts what the worker reports, per lane and outcome. */
class Tally implements WorkerObserver {
  readonly settled = new Map<string, number>();
  readonly settleErrors: unknown[] = [];

  messageSettled(lane: string, kind: string): void {
    const key = `${lane}:${kind}`;
    this.settled.set(key, (this.settled.get(key) ?? 0) + 1);
  }

  settleFailed(_lane: string, err: unknown): void {
    this.settleErrors.push(err);
  }

  count(lane: string, kind: string): number {
    return this.settled.get(`${lane}:${kind}`) ?? 0;
  }

  total(): number {
    return [...this.settled.values()].reduce((a, b) => a + b, 0);
  }
}

/** `orbit_messages_total{lane, outcome}` as the daemon's own registry reports it. */
async function settledMetric(daemon: Daemon, lane: string, outcome: string): Promise<number> {
  const { values } = await daemon.metrics.messages.get();
  return values.find((v) => v.labels.lane === lane && v.labels.outcome === outcome)?.value ?? 0;
}

/** Ready and unacknowledged counts of one queue, as the broker reports them. */
async function queueCounts(queue: string): Promise<{ ready: number; unacked: number }> {
  const stdout = await rabbitmqctl('-q', 'list_queues', 'name', 'messages_ready', 'messages_unacknowledged', '--no-table-headers');
  for (const line of stdout.split('\n')) {
    const [name, ready, unacked] = line.trim().split(/\s+/);
    if (name === queue) return { ready: Number(ready), unacked: Number(unacked) };
  }
  throw new Error(`queue ${queue} not listed`);
}

/** `text` with every regular-expression metacharacter escaped (a queue name in a policy pattern). */
function escapeRegex(text: string): string {
  return text.replace(/[.\\^$|?*+()[\]{}-]/g, '\\$&');
}

/**
 * Makes every queue whose name matches `pattern` refuse publishes (basic.nack) through a policy
 * named `policy`, until the function it resolves with (also registered as a clean-up) clears it.
 */
async function refusePublishes(policy: string, pattern: string): Promise<() => Promise<void>> {
  let set = true;
  const clear = async (): Promise<void> => {
    if (!set) return;
    set = false;
    await rabbitmqctl('-q', 'clear_policy', policy);
  };
  cleanup.add(clear);
  await rabbitmqctl('-q', 'set_policy', '--apply-to', 'queues', '--priority', '100', policy, pattern, '{"max-length":0,"overflow":"reject-publish"}');
  return clear;
}

function expectDeadAtNow(deadAt: unknown, since: number): void {
  expect(typeof deadAt).toBe('number');
  expect(deadAt as number).toBeGreaterThanOrEqual(since);
  expect(deadAt as number).toBeLessThanOrEqual(Date.now());
}

// ---------------------------------------------------------------------------------------

test('a handler failing twice then succeeding: 3 attempts (0, 1, 2) spaced by the backoff, then a reschedule resets attempt to 0', async () => {
  const { config } = namespaceWith('fail1', {
    delay: FINE_DELAY,
    lanes: [
      {
        name: 'a',
        concurrency: 2,
        retry: { maxAttempts: 5, backoff: { initial: '300ms', factor: 2, max: '10s', jitter: 'equal' } },
      },
    ],
  });
  const tally = new Tally();
  const recorder = new Recorder();
  const daemon = await startDaemon(
    config,
    {
      a: recorder.wrap((m) => {
        if (m.runs === 0 && m.attempt < 2) throw new Error(`flaky ${m.attempt}`);
        return m.runs === 0 ? reschedule({ delay: 300 }) : undefined;
      }),
    },
    tally,
  );
  const scheduler = await connectScheduler(config);
  const sent = await scheduler.publish('a', 'x', { id: 'flaky' });

  await waitFor(() => tally.count('a', 'done') === 1, 15_000, 'the second run to finish');
  await sleep(300);
  const runs = recorder.runs;
  expect(runs.map((r) => ({ id: r.id, runs: r.runs, attempt: r.attempt, redelivered: r.redelivered }))).toEqual([
    { id: sent.id, runs: 0, attempt: 0, redelivered: false },
    { id: sent.id, runs: 0, attempt: 1, redelivered: false },
    { id: sent.id, runs: 0, attempt: 2, redelivered: false },
    { id: sent.id, runs: 1, attempt: 0, redelivered: false },
  ]);

  const backoff = config.lanes[0]!.retry.backoff;
  for (const failures of [1, 2]) {
    const [min, max] = backoffBounds(failures, backoff);
    const prev = runs[failures - 1]!;
    const next = runs[failures]!;
    const gap = next.startedAt - prev.startedAt;
    // Never before the jittered delay; at most one unit (rounding up) plus slack late.
    expect(gap).toBeGreaterThanOrEqual(min - brokerClockSlackMs(max + UNIT_MS));
    expect(gap).toBeLessThanOrEqual(max + UNIT_MS + 400);
    // The due time it carried is the failure time plus a delay within the jitter bounds.
    expect(next.dueAt - prev.startedAt).toBeGreaterThanOrEqual(min);
    expect(next.dueAt - prev.startedAt).toBeLessThanOrEqual(max + 100);
    expect(next.startedAt).toBeGreaterThanOrEqual(next.dueAt - brokerClockSlackMs(max + UNIT_MS));
  }
  const rescheduleGap = runs[3]!.startedAt - runs[2]!.startedAt;
  expect(rescheduleGap).toBeGreaterThanOrEqual(300);
  expect(rescheduleGap).toBeLessThanOrEqual(300 + UNIT_MS + 400);

  expect(await settledMetric(daemon, 'a', 'retried')).toBe(2);
  expect(await settledMetric(daemon, 'a', 'rescheduled')).toBe(1);
  expect(await settledMetric(daemon, 'a', 'done')).toBe(1);
  expect(await settledMetric(daemon, 'a', 'dead')).toBe(0);
  expect(await nonEmptyQueues(config)).toEqual({});
}, 20_000);

// ---------------------------------------------------------------------------------------

describe('the dead-letter queue', () => {
  let dir: string;

  beforeAll(async () => {
    // The CLI runs from dist/: bring it up to date once (other engineers edit src/).
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'orbit-failures-'));
  }, 180_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('always-failing messages die after maxAttempts with error headers; list (API and CLI) is stable, replay runs them again at attempt 0, purge empties', async () => {
    const lanes = [
      { name: 'b', concurrency: 5, retry: { maxAttempts: 3, backoff: { initial: '100ms', factor: 1, max: '1s', jitter: 'none' } } },
    ];
    const { ns, config } = namespaceWith('fail2', { delay: FINE_DELAY, lanes });
    // The CLI sees the same topology (lanes, delay levels) as the daemon.
    const configFile = join(dir, `${ns}.json`);
    writeFileSync(
      configFile,
      JSON.stringify({ namespace: ns, amqp: { url: AMQP_URL }, delay: FINE_DELAY, log: { level: 'warn' }, http: { port: 0 }, lanes }),
    );

    const succeed = new Set<string>();
    const tally = new Tally();
    const recorder = new Recorder();
    await startDaemon(
      config,
      {
        b: recorder.wrap((m) => {
          if (!succeed.has(m.id)) throw new Error(`boom ${m.body.toString('utf8')}`);
        }),
      },
      tally,
    );
    const scheduler = await connectScheduler(config);
    const started = Date.now();
    const ids = [0, 1, 2, 3, 4].map((i) => `dead-${i}`);
    await Promise.all(ids.map((id, i) => scheduler.publish('b', `payload-${i}`, { id, headers: { 'x-trace': `t${i}` } })));

    await waitFor(() => tally.count('b', 'dead') === 5, 15_000, 'five dead letters');
    await sleep(200);
    // Exactly 3 attempts each, numbered 0, 1, 2.
    const byId = recorder.byId();
    expect([...byId.keys()].sort()).toEqual(ids);
    for (const id of ids) expect(byId.get(id)!.map((r) => r.attempt)).toEqual([0, 1, 2]);
    expect(tally.count('b', 'retried')).toBe(10);
    expect(await queueDepth(`${ns}.dead`)).toBe(5);

    // The raw dead letters: the message as delivered, plus why it died.
    const raw = await readDeadLetters(ns, false);
    expect(raw.map((d) => d.id).sort()).toEqual(ids);
    for (const d of raw) {
      const i = Number(d.id!.slice('dead-'.length));
      expect(d.body.toString('utf8')).toBe(`payload-${i}`);
      expect(d.headers['x-orbit-error-code']).toBe('HANDLER_ERROR');
      expect(d.headers['x-orbit-error']).toBe(`boom payload-${i}`);
      expect(d.headers['x-orbit-dead-lane']).toBe('b');
      expect(d.headers['x-orbit-dead-attempts']).toBe(3);
      expectDeadAtNow(d.headers['x-orbit-dead-at'], started);
      expect(d.headers['x-trace']).toBe(`t${i}`);
      expect(d.headers['x-death']).toBeUndefined();
    }

    // list: twice, same order as the queue, nothing lost (the peek above put them back in place).
    const session = await BrokerSession.open(config, 'cli', createLogger('silent'));
    cleanup.add(() => session.close());
    const dlq = new DeadLetterQueue(session, config.lanes);
    const first = await dlq.list('dead', 100);
    const second = await dlq.list('dead', 100);
    expect(first.map((v) => v.id)).toEqual(raw.map((d) => d.id));
    expect(second.map((v) => v.id)).toEqual(first.map((v) => v.id));
    expect(await dlq.count('dead')).toBe(5);
    for (const v of first) {
      const i = Number(v.id!.slice('dead-'.length));
      expect(v).toMatchObject({ lane: 'b', code: 'HANDLER_ERROR', error: `boom payload-${i}`, attempts: 3, preview: `payload-${i}`, bytes: `payload-${i}`.length });
      expect(v.ageMs).toBeGreaterThanOrEqual(0);
      expect(v.ageMs).toBeLessThan(Date.now() - started + 1000);
    }

    // The CLI shows the same list, in the same order, and leaves the queue as it was.
    const listed = await runCli(['dlq', 'list', '--json', '--config', configFile]);
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    const cliViews = JSON.parse(listed.stdout) as Array<{ id: string; lane: string; code: string; error: string; attempts: number }>;
    expect(cliViews.map((v) => v.id)).toEqual(first.map((v) => v.id));
    for (const v of cliViews) expect(v).toMatchObject({ lane: 'b', code: 'HANDLER_ERROR', attempts: 3 });
    expect((await dlq.list('dead', 100)).map((v) => v.id)).toEqual(first.map((v) => v.id));

    // replay: three now succeed, two keep failing; all five start again at attempt 0.
    for (const id of ids.slice(2)) succeed.add(id);
    const before = recorder.count;
    expect(await dlq.replay('dead')).toEqual({ replayed: 5, skipped: 0, left: 0, unknownLanes: [], badBundles: 0 });
    await waitFor(() => tally.count('b', 'done') === 3 && tally.count('b', 'dead') === 7, 15_000, 'replayed messages to settle');
    await sleep(200);
    const replayedRuns = recorder.runs.slice(before);
    const firstAfterReplay = new Map<string, { attempt: number; runs: number }>();
    for (const r of replayedRuns) if (!firstAfterReplay.has(r.id)) firstAfterReplay.set(r.id, { attempt: r.attempt, runs: r.runs });
    expect([...firstAfterReplay.keys()].sort()).toEqual(ids);
    for (const state of firstAfterReplay.values()) expect(state).toEqual({ attempt: 0, runs: 0 });
    for (const id of ids.slice(2)) expect(replayedRuns.filter((r) => r.id === id)).toHaveLength(1);
    for (const id of ids.slice(0, 2)) expect(replayedRuns.filter((r) => r.id === id).map((r) => r.attempt)).toEqual([0, 1, 2]);

    // Re-dead-lettered with fresh headers, not the ones of their first death.
    const again = await dlq.list('dead', 100);
    expect(again.map((v) => v.id).sort()).toEqual(ids.slice(0, 2));
    for (const v of again) expect(v).toMatchObject({ code: 'HANDLER_ERROR', attempts: 3, lane: 'b' });

    // replay of an id that is not there fails (exit 1) and says so; a filter matching nothing
    // says how many are left, not how many it looked at.
    const missing = await runCli(['dlq', 'replay', '--id', 'no-such-id', '--config', configFile]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain(`no message with id "no-such-id" in ${ns}.dead (2 message(s) there); nothing replayed [MESSAGE_NOT_FOUND]`);
    const otherLane = await runCli(['dlq', 'replay', '--lane', 'other', '--config', configFile]);
    expect(otherLane.code).toBe(0);
    expect(otherLane.stdout).toBe(`replayed 0 message(s) from ${ns}.dead; 2 left there\n`);
    expect((await dlq.list('dead', 100)).map((v) => v.id)).toEqual(again.map((v) => v.id));

    // purge without --yes refuses (exit 2) and removes nothing.
    const refused = await runCli(['dlq', 'purge', '--config', configFile]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('--yes');
    expect(refused.stderr).toContain('CONFIRMATION_REQUIRED');
    expect(await queueDepth(`${ns}.dead`)).toBe(2);

    expect(await dlq.purge('dead')).toBe(2);
    expect(await queueDepth(`${ns}.dead`)).toBe(0);
    expect(await dlq.list('dead', 100)).toEqual([]);
    expect(await nonEmptyQueues(config)).toEqual({});
  }, 45_000);
});

// ---------------------------------------------------------------------------------------

describe('failures that skip or bound the retries', () => {
  let ns: string;
  let config: ResolvedConfig;
  let scheduler: Scheduler;
  const recorder = new Recorder();
  const tally = new Tally();
  const signals = new Map<string, AbortSignal[]>();
  let lateFinishes = 0;
  const suite = new Cleanup();

  beforeAll(async () => {
    ns = randomNamespace('fail3');
    suite.add(() => deleteNamespace(ns));
    const quick = { initial: '100ms', factor: 1, max: '1s', jitter: 'none' };
    config = testConfig(ns, {
      delay: { unit: '100ms', levels: 8 },
      lanes: [
        { name: 'unrec', concurrency: 2, retry: { maxAttempts: 5, backoff: quick } },
        { name: 'slow', concurrency: 2, timeout: '300ms', retry: { maxAttempts: 2, backoff: quick } },
        { name: 'outcome', concurrency: 4, retry: { maxAttempts: 5, backoff: quick } },
        { name: 'json', concurrency: 2, format: 'json', retry: { maxAttempts: 5, backoff: quick } },
        { name: 'garbage', concurrency: 2, retry: { maxAttempts: 5, backoff: quick } },
      ],
    });
    const daemon = new Daemon({
      config,
      observer: tally,
      handlers: {
        unrec: recorder.wrap((m) => {
          if (m.id === 'custom') throw new UnrecoverableError('x', { code: 'MY_CODE' });
          throw new UnrecoverableError(`hopeless ${m.id}`);
        }),
        // Needs the context (signal), which Recorder.wrap does not pass on: records by hand.
        slow: async (m, { signal }) => {
          recorder.record(m);
          signals.set(m.id, [...(signals.get(m.id) ?? []), signal]);
          if (m.id === 'ignores') {
            await sleep(2000); // ignores the signal entirely
            lateFinishes++;
            return undefined;
          }
          await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
          return undefined;
        },
        outcome: recorder.wrap((m) => {
          switch (m.body.toString('utf8')) {
            case 'negative':
              return reschedule({ delay: -1 });
            case 'lane':
              return reschedule({ lane: 'nope' });
            case 'far':
              return reschedule({ delay: maxDelayMs(config.delay) + 1000 });
            case 'foo':
              return { foo: 1 } as never;
            default:
              return undefined;
          }
        }),
        json: recorder.wrap(() => undefined),
        garbage: recorder.wrap((m) => (m.runs === 0 ? reschedule({ delay: 200 }) : undefined)),
      },
    });
    suite.add(() => daemon.stop());
    await daemon.start();
    scheduler = new Scheduler({ config });
    suite.add(() => scheduler.close());
    await scheduler.connect();
  }, 30_000);

  afterAll(() => suite.run(), 30_000);

  const runsOf = (lane: string, id?: string) => recorder.runs.filter((r) => r.lane === lane && (id === undefined || r.id === id));

  test('UnrecoverableError dead-letters at once (1 attempt), code UNRECOVERABLE or the custom code', async () => {
    const started = Date.now();
    await scheduler.publish('unrec', 'a', { id: 'plain' });
    await scheduler.publish('unrec', 'b', { id: 'custom' });
    const dead = await takeDeadLetters(ns, 2);
    expect(runsOf('unrec').map((r) => [r.id, r.attempt]).sort()).toEqual([
      ['custom', 0],
      ['plain', 0],
    ]);
    expect(dead.get('plain')!.headers).toMatchObject({
      'x-orbit-error-code': 'UNRECOVERABLE',
      'x-orbit-error': 'hopeless plain',
      'x-orbit-dead-lane': 'unrec',
      'x-orbit-dead-attempts': 1,
    });
    expect(dead.get('custom')!.headers).toMatchObject({ 'x-orbit-error-code': 'MY_CODE', 'x-orbit-error': 'x', 'x-orbit-dead-attempts': 1 });
    for (const d of dead.values()) expectDeadAtNow(d.headers['x-orbit-dead-at'], started);
    expect(tally.count('unrec', 'retried')).toBe(0);
  }, 15_000);

  test('a timeout fails the attempt whether or not the handler honours the signal; after maxAttempts 2 both are dead with HANDLER_TIMEOUT', async () => {
    await scheduler.publish('slow', 'i', { id: 'ignores' });
    await scheduler.publish('slow', 'h', { id: 'honours' });
    const dead = await takeDeadLetters(ns, 2);
    for (const id of ['ignores', 'honours']) {
      const runs = runsOf('slow', id);
      expect(runs.map((r) => r.attempt)).toEqual([0, 1]);
      // The retry came after the 300 ms timeout plus the 100 ms backoff, not after the 2 s sleep.
      const gap = runs[1]!.startedAt - runs[0]!.startedAt;
      expect(gap).toBeGreaterThanOrEqual(400);
      expect(gap).toBeLessThan(1500);
      expect(dead.get(id)!.headers).toMatchObject({
        'x-orbit-error-code': 'HANDLER_TIMEOUT',
        'x-orbit-error': 'handler did not settle within 300 ms',
        'x-orbit-dead-lane': 'slow',
        'x-orbit-dead-attempts': 2,
      });
      // Every attempt's signal was aborted, with the timeout as the reason.
      expect(signals.get(id)).toHaveLength(2);
      for (const s of signals.get(id)!) {
        expect(s.aborted).toBe(true);
        expect(s.reason).toBeInstanceOf(HandlerTimeoutError);
      }
    }
    // The ignoring handler finishes long after; its late result changes nothing.
    await waitFor(() => lateFinishes === 2, 5000, 'the ignoring handler to wake up');
    await sleep(200);
    expect(runsOf('slow')).toHaveLength(4);
    expect(await queueDepth(`${ns}.dead`)).toBe(0);
    expect(tally.count('slow', 'dead')).toBe(2);
    expect(tally.count('slow', 'done')).toBe(0);
  }, 15_000);

  test('malformed outcomes dead-letter at once with BAD_OUTCOME, and the daemon keeps running', async () => {
    const cases: Record<string, string> = {
      negative: 'negative',
      lane: 'unknown lane "nope"',
      far: 'exceeds the maximum',
      foo: 'expected nothing, { done: true } or { reschedule: {...} }',
    };
    for (const body of Object.keys(cases)) await scheduler.publish('outcome', body, { id: `bad-${body}` });
    const dead = await takeDeadLetters(ns, 4);
    for (const [body, text] of Object.entries(cases)) {
      const d = dead.get(`bad-${body}`)!;
      expect(d.body.toString('utf8')).toBe(body);
      expect(d.headers).toMatchObject({ 'x-orbit-error-code': 'BAD_OUTCOME', 'x-orbit-dead-lane': 'outcome', 'x-orbit-dead-attempts': 1 });
      expect(d.headers['x-orbit-error']).toContain(text);
      expect(runsOf('outcome', `bad-${body}`)).toHaveLength(1);
    }
    // Still consuming.
    await scheduler.publish('outcome', 'fine', { id: 'fine' });
    await waitFor(() => tally.count('outcome', 'done') === 1, 5000, 'a good message after the bad ones');
    expect(tally.count('outcome', 'dead')).toBe(4);
  }, 15_000);

  test('a json lane dead-letters a body that does not parse with BAD_BODY, without calling the handler', async () => {
    // orbit's own publish refuses it up front …
    await expect(scheduler.publish('json', Buffer.from('not json'), { id: 'refused' })).rejects.toMatchObject({ code: 'BAD_BODY' });
    // … so it comes the way another producer's would: sent as it is, unchecked.
    await scheduler.send({ ...scheduler.prepare('json', {}, { id: 'not-json' }), body: Buffer.from('not json') });
    await scheduler.publish('json', { x: 1 }, { id: 'is-json' });
    const dead = await takeDeadLetters(ns, 1);
    const d = dead.get('not-json')!;
    expect(d.body.toString('utf8')).toBe('not json');
    expect(d.headers).toMatchObject({ 'x-orbit-error-code': 'BAD_BODY', 'x-orbit-dead-lane': 'json', 'x-orbit-dead-attempts': 1 });
    expect(String(d.headers['x-orbit-error'])).toContain('not valid JSON');
    await waitFor(() => tally.count('json', 'done') === 1, 5000, 'the JSON message');
    expect(runsOf('json').map((r) => [r.id, r.body])).toEqual([['is-json', '{"x":1}']]);
  }, 15_000);

  test('garbage or missing orbit headers from a foreign publisher: runs once at attempt 0, runs 0, due now, with an id; rescheduling works', async () => {
    const queue = `${ns}.lane.garbage`;
    const sentAt = Date.now();
    const conn = await amqplib.connect(AMQP_URL);
    try {
      const ch = await conn.createConfirmChannel();
      ch.sendToQueue(queue, Buffer.from('bare'));
      ch.sendToQueue(queue, Buffer.from('garbage'), {
        headers: { 'x-orbit-attempt': 'banana', 'x-orbit-due': -5, 'x-orbit-runs': {} },
      });
      await ch.waitForConfirms();
      await ch.close();
    } finally {
      await conn.close().catch(() => undefined);
    }
    await waitFor(() => tally.count('garbage', 'done') === 2, 10_000, 'both messages to run twice');
    await sleep(200);
    const runs = runsOf('garbage');
    expect(runs).toHaveLength(4);
    const ids = new Set<string>();
    for (const body of ['bare', 'garbage']) {
      const [first, second] = runs.filter((r) => r.body === body);
      expect(first).toMatchObject({ attempt: 0, runs: 0, redelivered: false });
      expect(typeof first!.id).toBe('string');
      expect(first!.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(first!.dueAt).toBeGreaterThanOrEqual(sentAt);
      expect(first!.dueAt).toBeLessThanOrEqual(first!.startedAt);
      // The generated id is kept from the first republish on; the headers are clean again.
      expect(second).toMatchObject({ id: first!.id, attempt: 0, runs: 1 });
      expect(second!.headers['x-orbit-attempt']).toBe(0);
      expect(second!.startedAt - first!.startedAt).toBeGreaterThanOrEqual(200);
      ids.add(first!.id);
    }
    expect(ids.size).toBe(2);
    expect(await queueDepth(`${ns}.dead`)).toBe(0);
  }, 15_000);
});

// ---------------------------------------------------------------------------------------

test('500 messages, 10% always failing: every success runs exactly once, every failure is dead after 2 attempts, nothing lost', async () => {
  const { ns, config } = namespaceWith('fail5', {
    delay: { unit: '100ms', levels: 8 },
    lanes: [{ name: 'burst', concurrency: 50, retry: { maxAttempts: 2, backoff: { initial: '100ms', factor: 2, max: '1s', jitter: 'full' } } }],
  });
  const tally = new Tally();
  const recorder = new Recorder();
  await startDaemon(
    config,
    {
      burst: recorder.wrap((m) => {
        if (Number(m.body.toString('utf8')) % 10 === 0) throw new Error('always fails');
      }),
    },
    tally,
  );
  const scheduler = await connectScheduler(config);
  const all = Array.from({ length: 500 }, (_, i) => i);
  await Promise.all(all.map((i) => scheduler.publish('burst', String(i), { id: `m-${i}` })));

  await waitFor(() => tally.count('burst', 'done') === 450 && tally.count('burst', 'dead') === 50, 30_000, 'all 500 to settle');
  await sleep(300);
  const byId = recorder.byId();
  expect(byId.size).toBe(500);
  for (const i of all) {
    const runs = byId.get(`m-${i}`)!;
    expect(runs.map((r) => r.attempt)).toEqual(i % 10 === 0 ? [0, 1] : [0]);
  }
  expect(tally.count('burst', 'retried')).toBe(50);
  const dead = await readDeadLetters(ns, true);
  expect(dead.map((d) => d.id).sort()).toEqual(all.filter((i) => i % 10 === 0).map((i) => `m-${i}`).sort());
  for (const d of dead) expect(d.headers).toMatchObject({ 'x-orbit-error-code': 'HANDLER_ERROR', 'x-orbit-dead-attempts': 2 });
  expect(await nonEmptyQueues(config)).toEqual({});

  // Still consuming afterwards.
  await scheduler.publish('burst', '1001', { id: 'after' });
  await waitFor(() => tally.count('burst', 'done') === 451, 5000, 'a message after the burst');
}, 45_000);

// ---------------------------------------------------------------------------------------

test('a broker refusing the reschedule keeps the original unacked and un-rerun until the publish goes through; nothing lost', async () => {
  // The binary levels, whose queues exist up front for the policy to find (the ladder declares rungs on first use).
  const { ns, config } = namespaceWith('fail6', { delay: { unit: '100ms', levels: 8, tolerance: 0 }, lanes: [{ name: 'r', concurrency: 2 }] });
  const tally = new Tally();
  const recorder = new Recorder();
  const daemon = await startDaemon(config, { r: recorder.wrap((m) => (m.runs === 0 ? reschedule({ delay: 500 }) : undefined)) }, tally);
  const scheduler = await connectScheduler(config);
  const laneQueue = `${ns}.lane.r`;

  // Every delay queue of this namespace rejects publishes (nack) while the policy is set.
  const policy = `${ns}-refuse`;
  const clearPolicy = await refusePublishes(policy, `^${escapeRegex(ns)}\\.delay\\.`);
  const delayQueues = buildTopology(config).queues.map((q) => q.name).filter((n) => n.startsWith(`${ns}.delay.`));
  await waitFor(
    async () => {
      const stdout = await rabbitmqctl('-q', 'list_queues', 'name', 'policy', '--no-table-headers');
      const applied = stdout.split('\n').map((l) => l.trim().split(/\s+/)).filter(([name, p]) => delayQueues.includes(name!) && p === policy);
      return applied.length === delayQueues.length;
    },
    10_000,
    'the policy to apply to every delay queue',
  );

  const sent = await scheduler.publish('r', 'refused', { id: 'refused' });
  // The handler ran once and asked for a reschedule; the broker keeps nacking it.
  await waitFor(() => tally.settleErrors.length >= 4, 10_000, 'repeated settle failures');
  expect(recorder.runs.map((r) => r.id)).toEqual([sent.id]);
  expect(tally.total()).toBe(0);
  expect(await settledMetric(daemon, 'r', 'rescheduled')).toBe(0);
  expect((tally.settleErrors[0] as { code?: string }).code).toBe('NACKED');
  expect(await queueCounts(laneQueue)).toEqual({ ready: 0, unacked: 1 });
  for (const q of delayQueues) expect(await queueDepth(q)).toBe(0);
  await sleep(500);
  expect(recorder.count).toBe(1);

  // The broker takes it again: the replacement is confirmed, the original acked, and the
  // message runs again as rescheduled — once.
  await clearPolicy();
  // The worker's own backoff between publish attempts doubles (100 ms, 200 ms, …), so the
  // next attempt may be a few seconds away.
  await waitFor(() => tally.count('r', 'rescheduled') === 1, 20_000, 'the reschedule to be confirmed');
  await waitFor(() => tally.count('r', 'done') === 1, 10_000, 'the rescheduled run');
  await sleep(300);
  expect(recorder.runs.map((r) => ({ id: r.id, runs: r.runs, attempt: r.attempt, redelivered: r.redelivered }))).toEqual([
    { id: sent.id, runs: 0, attempt: 0, redelivered: false },
    { id: sent.id, runs: 1, attempt: 0, redelivered: false },
  ]);
  const [first, second] = recorder.runs;
  expect(second!.startedAt - first!.startedAt).toBeGreaterThanOrEqual(500);
  expect(await queueCounts(laneQueue)).toEqual({ ready: 0, unacked: 0 });
  expect(await settledMetric(daemon, 'r', 'rescheduled')).toBe(1);
  expect(await nonEmptyQueues(config)).toEqual({});
}, 45_000);

test('on the ladder, a rung that refuses the reschedule (nack) sends it one rung up: it runs again, once, and nothing waits on the refusing rung', async () => {
  const { ns, config } = namespaceWith('fail6l', { delay: { unit: '100ms', tolerance: '2%' }, lanes: [{ name: 'r', concurrency: 2 }] });
  const tally = new Tally();
  const recorder = new Recorder();
  const rung = routeDelay(500, 'r', config.delay, names(ns)).rung!;
  // The rung the 500 ms reschedule goes to rejects every publish (nack) while the policy is set.
  await refusePublishes(`${ns}-refuse`, `^${escapeRegex(rung.queue)}$`);
  const daemon = await startDaemon(config, { r: recorder.wrap((m) => (m.runs === 0 ? reschedule({ delay: 500 }) : undefined)) }, tally);
  const scheduler = await connectScheduler(config);
  const sent = await scheduler.publish('r', 'refused', { id: 'refused-ladder' });
  await waitFor(() => tally.count('r', 'done') === 1, 20_000, 'the rescheduled run');
  await sleep(300);
  expect(recorder.runs.map((r) => ({ id: r.id, runs: r.runs }))).toEqual([
    { id: sent.id, runs: 0 },
    { id: sent.id, runs: 1 },
  ]);
  const [first, second] = recorder.runs;
  // Never early: the rung above waits longer than the one that refused.
  expect(second!.startedAt - first!.startedAt).toBeGreaterThanOrEqual(500);
  expect(tally.count('r', 'rescheduled')).toBe(1);
  expect(await settledMetric(daemon, 'r', 'rescheduled')).toBe(1);
  expect(tally.settleErrors).toEqual([]);
  expect(await queueDepth(rung.queue)).toBe(0);
  expect(await nonEmptyQueues(config)).toEqual({});
}, 45_000);
