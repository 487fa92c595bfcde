/**
 * Work-ahead on the shipped quorum delay ladder. A quorum queue puts a message handed back
 * behind the others (and RabbitMQ 3.10 then expires it only once it is at the head again,
 * late), so work-ahead sends such a message on for the rest of its delay instead
 * (`orbit_published_total{kind="forward"}`) and acks it once the copy is confirmed; a rung
 * whose head is too far ahead is left alone until that head comes within `maxAdvance`.
 *
 * Runs on whichever broker the suite targets (3.10, and 4.0 in CI's 4.0 stage).
 */
import amqplib from 'amqplib';
import { Daemon, Scheduler, type ResolvedConfig } from '../../src';
import { NEW_QUORUM_QUEUE_SETTLE_MS } from '../../src/amqp/new-quorum-queue';
import { allowedLatenessMs } from '../../src/delay/ladder';
import { silentLogger } from '../../src/logging/logger';
import { AMQP_URL, deleteNamespace, randomNamespace, rabbitmqctl, testConfig, withChannel } from '../helpers/broker';
import { Cleanup, Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';
import { brokerClockSlackMs } from '../helpers/broker-clock';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const DELAY = { unit: '100ms', levels: 12, queueType: 'quorum' } as const;

function namespace(prefix: string): string {
  const ns = randomNamespace(prefix);
  cleanup.add(() => deleteNamespace(ns));
  return ns;
}

async function scheduler(config: ResolvedConfig): Promise<Scheduler> {
  const s = new Scheduler({ config, logger: silentLogger() });
  cleanup.add(() => s.close());
  await s.connect();
  return s;
}

async function daemon(config: ResolvedConfig, handlers: ConstructorParameters<typeof Daemon>[0]['handlers']): Promise<Daemon> {
  const d = new Daemon({ config, handlers, logger: silentLogger() });
  cleanup.add(() => d.stop());
  await d.start();
  return d;
}

async function forwarded(d: Daemon): Promise<number> {
  const { values } = await d.metrics.published.get();
  return values.find((v) => v.labels.kind === 'forward')?.value ?? 0;
}

/** The namespace's delay queues (rungs) holding messages, by name (counted by passive declares: the broker's listing lags for quorum queues). */
async function rungDepths(ns: string): Promise<Record<string, number>> {
  const rungs = (await rabbitmqctl('-q', 'list_queues', 'name', '--no-table-headers')).split('\n').map((l) => l.trim()).filter((n) => n.startsWith(`${ns}.wait`));
  const out: Record<string, number> = {};
  await withChannel(async (ch) => {
    for (const name of rungs) {
      const { messageCount } = await ch.checkQueue(name);
      if (messageCount > 0) out[name] = messageCount;
    }
  });
  return out;
}

test('a rung whose head is too far ahead: one copy sent on, the rung then left alone, nothing run early, nothing lost', async () => {
  const ns = namespace('waq');
  const lane = { name: 'w', concurrency: 10, workAhead: { idle: '300ms', maxAdvance: '1s', maxRate: 1000 } };
  const config = testConfig(ns, { delay: DELAY, lanes: [lane] });
  expect(config.delay.tolerance).toBeGreaterThan(0);
  const s = await scheduler(config);
  for (let i = 0; i < 20; i++) await s.publish('w', { i }, { id: `far-${i}`, delay: 60_000 });
  expect(Object.values(await rungDepths(ns))).toEqual([20]);

  const recorder = new Recorder();
  const d = await daemon(config, { w: recorder.wrap() });
  // The head is fetched once and sent on (its copy's rung is new: it settles first). The
  // daemon finds the rung at start by probing the ladder, which takes seconds on a loaded
  // machine (a fixed 9 s wait once saw no forward yet), so the forward is waited for.
  await waitFor(async () => (await forwarded(d)) >= 1, 30_000 + NEW_QUORUM_QUEUE_SETTLE_MS, 'the head sent on');
  // Then many idle rounds (300 ms each): the rung is not looked into again.
  await sleep(4000);
  expect(recorder.count).toBe(0);
  expect(await forwarded(d)).toBe(1);
  await d.stop();
  // The copy waits in the rung of the rest of its delay: all 20 still in the delay path, none lost.
  const depths = await rungDepths(ns);
  expect(Object.values(depths).reduce((a, b) => a + b, 0)).toBe(20);
  expect(Object.keys(depths)).toHaveLength(2);
}, 60_000);

test('a message for a lane this daemon does not serve, due soon: sent on, it reaches its lane once, never early, within its bound', async () => {
  const ns = namespace('waqx');
  const lanes = [
    { name: 'w', concurrency: 10, workAhead: { idle: '300ms', maxAdvance: '10s', maxRate: 1000 } },
    { name: 'x', concurrency: 10 },
  ];
  const publishing = testConfig(ns, { delay: DELAY, lanes });
  const serving = testConfig(ns, { delay: DELAY, lanes: [lanes[0]] });
  const s = await scheduler(publishing);
  const DELAY_MS = 4000;
  // The first publish to the rung declares it and waits for it to settle; the rest go at once.
  await s.publish('x', {}, { id: 'warm', delay: DELAY_MS });
  const due = new Map<string, number>();
  for (let i = 0; i < 10; i++) {
    const p = await s.publish('x', { i }, { id: `x-${i}`, delay: DELAY_MS });
    due.set(p.id, p.dueAt.getTime());
  }

  // Lane x's queue, read by the test: when each copy arrives, and its due time.
  const conn = await amqplib.connect(AMQP_URL);
  cleanup.add(() => conn.close().catch(() => undefined));
  const ch = await conn.createChannel();
  const arrived = new Map<string, { at: number; count: number }>();
  await ch.consume(`${ns}.lane.x`, (m) => {
    if (!m) return;
    const id = String(m.properties.messageId);
    const seen = arrived.get(id);
    arrived.set(id, { at: seen?.at ?? Date.now(), count: (seen?.count ?? 0) + 1 });
    ch.ack(m);
  });

  const d = await daemon(serving, { w: new Recorder().wrap() });
  await waitFor(() => arrived.size === 11, DELAY_MS + NEW_QUORUM_QUEUE_SETTLE_MS + 20_000, 'every copy in lane x');
  await sleep(1000);
  expect(await forwarded(d)).toBeGreaterThanOrEqual(1);
  for (const [id, dueAt] of due) {
    const a = arrived.get(id)!;
    expect(a.count).toBe(1);
    // Never early, but for the broker's clock (`brokerClockSlackMs`).
    expect(a.at).toBeGreaterThanOrEqual(dueAt - brokerClockSlackMs(DELAY_MS));
    // Its bound, plus the 5 s a quorum rung new to the daemon's publisher waits, plus the broker's own delay.
    expect(a.at - dueAt).toBeLessThanOrEqual(allowedLatenessMs(DELAY_MS, serving.delay.tolerance, serving.delay.unitMs) + NEW_QUORUM_QUEUE_SETTLE_MS + 1500);
  }
}, 90_000);
