/**
 * RabbitMQ 4.0, quorum everywhere, on a private 4.0.5 node that denies global QoS (as 4.3
 * does): what 4.x changes must cost no message.
 *
 * - 4.0 gives a quorum queue a delivery limit of 20 unless the declarer sets one, and every
 *   return counts (a nack, a `basic.get` handed back, a channel closed with it unacked).
 *   orbit declares its own limit, so returns and looks are free: 25+ of each here.
 * - Global QoS denied: a partitioned lane still runs at most `concurrency` handlers.
 * - A namespace declared by an older orbit (3.10 arguments: `x-queue-mode`, quorum queues
 *   without a delivery limit) keeps working, and `migrate` redeclares it losing nothing.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import amqplib from 'amqplib';
import { Daemon, Scheduler, UnrecoverableError, type ResolvedConfig } from '../../src';
import { BrokerSession } from '../../src/publish/session';
import { DeadLetterQueue } from '../../src/dlq/dead-letter-queue';
import { silentLogger, type Logger } from '../../src/logging/logger';
import { migrateQueues } from '../../src/migrate/migrate-queues';
import { brokerFeatures, QUORUM_DELIVERY_LIMIT } from '../../src/topology/broker-features';
import { buildTopology } from '../../src/topology/build';
import { randomNamespace, testConfig } from '../helpers/broker';
import { freePort, PrivateBroker } from '../helpers/private-broker';
import { describeRabbitmq4 } from '../helpers/rabbitmq';
import { Cleanup, Recorder } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

/** A logger that keeps the warnings, to see what the daemon said about old queues. */
function capturingLogger(lines: Array<Record<string, unknown>>): Logger {
  const base = silentLogger();
  const wrap = (bindings: Record<string, unknown>): Logger =>
    new Proxy(base, {
      get(target, prop, receiver) {
        if (prop === 'warn' || prop === 'info' || prop === 'error') {
          return (obj: unknown, msg?: string) => lines.push({ level: prop, ...bindings, ...(typeof obj === 'object' ? obj : {}), msg: msg ?? obj });
        }
        if (prop === 'child') return (b: Record<string, unknown>) => wrap({ ...bindings, ...b });
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });
  return wrap({});
}

describeRabbitmq4('RabbitMQ 4.0 (quorum everywhere, global QoS denied)', () => {
  // RabbitMQ's at-least-once dead-letter worker retries a dead-lettering it saw no confirm for
  // only after `dead_letter_worker_publisher_confirm_timeout` (180 s by default): 10 s here, as
  // docs/DEPLOY.md recommends, so one unconfirmed level-to-level hop is late by seconds, not minutes.
  const advanced = join(mkdtempSync(join(tmpdir(), 'orbit-r4-')), 'advanced.config');
  writeFileSync(advanced, '[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, 10000}]}].\n');
  const broker = new PrivateBroker({ rabbitmq: 4, extraConfig: ['deprecated_features.permit.global_qos = false'], advancedConfigFile: advanced });
  let conn: amqplib.ChannelModel;
  const cleanup = new Cleanup();

  beforeAll(async () => {
    await broker.start();
    conn = await amqplib.connect(broker.url);
  }, 90_000);
  afterAll(async () => {
    await conn?.close().catch(() => undefined);
    await broker.stop();
    rmSync(dirname(advanced), { recursive: true, force: true });
  }, 60_000);
  afterEach(() => cleanup.run());

  function quorumConfig(ns: string, settings: Record<string, unknown> = {}): ResolvedConfig {
    return testConfig(ns, { amqp: { url: broker.url, reconnect: '500ms' }, delay: { unit: '1s', levels: 6, tolerance: 0, queueType: 'quorum' }, ...settings });
  }

  async function scheduler(config: ResolvedConfig): Promise<Scheduler> {
    const s = new Scheduler({ config, role: 'cli', logger: silentLogger() });
    cleanup.add(() => s.close());
    await s.connect();
    return s;
  }

  async function daemon(config: ResolvedConfig, handlers: ConstructorParameters<typeof Daemon>[0]['handlers'], logger?: Logger): Promise<Daemon> {
    const d = new Daemon({ config, handlers, ...(logger ? { logger } : {}) });
    cleanup.add(() => d.stop());
    await d.start();
    return d;
  }

  test('the broker is 4.x and refuses global QoS: this file tests what it says', async () => {
    expect(brokerFeatures(conn.connection.serverProperties.version).quorumDefaultDeliveryLimit).toBe(true);
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    // Denied global QoS is not refused on 4.0 but made per-consumer; either way it cannot bound a lane.
    await ch.prefetch(1, true).catch(() => undefined);
    await ch.close().catch(() => undefined);
  });

  test('a message returned 25 times by nacks and closed channels is still there, and runs once', async () => {
    const ns = randomNamespace('r4ret');
    const config = quorumConfig(ns, { lanes: [{ name: 'q', queueType: 'quorum', maxPriority: 0 }] });
    const s = await scheduler(config);
    await s.publish('q', 'survivor', { id: 'survivor' });
    const lane = `${ns}.lane.q`;
    for (let i = 0; i < 25; i++) {
      const ch = await conn.createChannel();
      const m = await ch.get(lane, { noAck: false });
      expect(m).not.toBe(false);
      if (i % 2 === 0) ch.nack(m as amqplib.GetMessage, false, true);
      await ch.close(); // odd rounds: handed back by the close
    }
    const ch = await conn.createChannel();
    expect((await ch.checkQueue(lane)).messageCount).toBe(1);
    await ch.close();

    const recorder = new Recorder();
    await daemon(config, { q: recorder.wrap((m) => (m.runs === 0 ? { reschedule: { delay: 0 } } : undefined)) });
    await waitFor(() => recorder.count === 2, 10_000, 'the survivor to run twice');
    // Handlers see the headers as delivered: the broker's count of returns included.
    expect(recorder.runs[0]).toMatchObject({ id: 'survivor', body: 'survivor', redelivered: true, runs: 0 });
    expect(recorder.runs[0]!.headers['x-delivery-count']).toBe(25);
    // Its replacement is a new copy: no stale count carried over.
    expect(recorder.runs[1]).toMatchObject({ id: 'survivor', redelivered: false, runs: 1 });
    expect(recorder.runs[1]!.headers['x-delivery-count']).toBeUndefined();
  });

  test('25 rounds of dlq list and filtered replay lose, move and reorder nothing', async () => {
    const ns = randomNamespace('r4dlq');
    const config = quorumConfig(ns, { lanes: [{ name: 'q', queueType: 'quorum', maxPriority: 0 }] });
    const s = await scheduler(config);
    const recorder = new Recorder();
    const d = await daemon(config, { q: recorder.wrap(() => { throw new UnrecoverableError('poison'); }) });
    const ids = ['d1', 'd2', 'd3', 'd4'];
    for (const id of ids) await s.publish('q', id, { id });
    const session = await BrokerSession.open(config, 'cli', silentLogger());
    cleanup.add(() => session.close());
    const dlq = new DeadLetterQueue(session, config.lanes);
    await waitFor(async () => (await dlq.count('dead')) === 4, 10_000, 'four dead letters');
    await d.stop();
    for (let round = 0; round < 25; round++) {
      const listed = await dlq.list("dead", 10);
      expect(listed.map((v) => v.id)).toEqual(ids);
      const replay = await dlq.replay('dead', { id: 'no-such-id' });
      expect(replay).toMatchObject({ replayed: 0, skipped: 4 });
    }
    expect(await dlq.count('dead')).toBe(4);
    // And a replay after all that still finds each one, in order.
    expect((await dlq.list('dead', 10)).map((v) => v.id)).toEqual(ids);
  });

  test('work-ahead over quorum levels for many rounds moves nothing early that is not flagged early', async () => {
    const ns = randomNamespace('r4wa');
    const config = quorumConfig(ns, {
      lanes: [{ name: 'q', queueType: 'quorum', maxPriority: 9, concurrency: 4, workAhead: { idle: '100ms', maxAdvance: '2s', maxRate: 100 } }],
    });
    const s = await scheduler(config);
    const recorder = new Recorder();
    // Count the looks: every basic.get on a delay level (work-ahead's only way in).
    const gets = new Map<string, number>();
    const probe = await conn.createChannel();
    const proto = Object.getPrototypeOf(probe) as { get: (q: string, o?: unknown) => Promise<unknown> };
    await probe.close();
    const realGet = proto.get;
    proto.get = function (this: unknown, queue: string, options?: unknown) {
      return realGet.call(this, queue, options).then((m) => {
        // A message fetched (not an empty answer): each one not run is handed back.
        if (m && queue.startsWith(`${ns}.delay.`)) gets.set(queue, (gets.get(queue) ?? 0) + 1);
        return m;
      });
    };
    cleanup.add(async () => {
      proto.get = realGet;
    });
    const started = Date.now();
    await daemon(config, { q: recorder.wrap() });
    // Delays of 14–26 s put heads in levels 2–4 (1 s unit); every idle round (every 0.1–0.15 s)
    // fetches each level's head and hands it back until it is within maxAdvance (2 s).
    const delays = Array.from({ length: 13 }, (_, i) => 14_000 + i * 1000);
    await Promise.all(delays.map((delay, i) => s.publish('q', `m${i}`, { id: `m${i}`, delay, priority: i % 10 })));
    const published = Date.now();
    try {
      // Bound: the last message is due 26 s after publishing and reaches its lane by then through
      // the levels alone (3 hops, each a TTL expiry and an at-least-once dead-lettering); work-ahead
      // only runs it sooner (measured: all done 24.2–25.4 s after publishing, alone, beside two busy
      // loops and beside tls.test). 19 s of slack is 6 s a hop: what misses it is stuck, not slow.
      await waitFor(() => recorder.count >= delays.length, 45_000, 'every message to run');
    } catch (err) {
      // Seen twice in CI (2 of about 20 runs, never locally) before this node retried unconfirmed
      // dead-letterings after 10 s instead of 180 s (see the broker above): say where every message is.
      // checkQueue counts ready messages only; a quorum queue's fetched-and-not-handed-back
      // (unacked) and expired-but-unconfirmed (at-least-once dead-lettering: "dlx") messages
      // show there as nothing, so ask the broker for its counts as well (4.0's rabbitmqctl has no
      // messages_dlx key: a quorum queue's total less ready and unacked is its dlx count; these
      // come from the queue's last tick, so they may lag by a tick).
      const ran = new Set(recorder.runs.map((r) => r.id));
      const missing = delays.flatMap((delay, i) => (ran.has(`m${i}`) ? [] : [{ id: `m${i}`, dueAfterPublishMs: delay, priority: i % 10 }]));
      const dbg = await conn.createChannel();
      const depths: string[] = [];
      for (const q of buildTopology(config).queues) { const c = await dbg.checkQueue(q.name); depths.push(`${q.name}=${c.messageCount}/${c.consumerCount}`); }
      await dbg.close();
      const counts = await broker
        .ctl('list_queues', '--no-table-headers', 'name', 'messages', 'messages_ready', 'messages_unacknowledged')
        .then((out) => out.split('\n').filter((l) => l.startsWith(`${ns}.`)).map((l) => l.trim().split(/\s+/).join(' ')))
        .catch((e: unknown) => [`list_queues failed: ${String(e)}`]);
      console.log(
        'work-ahead test timed out; state:',
        JSON.stringify({
          sincePublishMs: Date.now() - published,
          missing,
          ran: recorder.runs.map((r) => [r.id, r.early, r.startedAt - published, r.startedAt - r.dueAt]),
          depths,
          // name total ready unacked
          counts,
          gets: [...gets],
        }),
      );
      throw err;
    }
    expect(Date.now() - started).toBeGreaterThan(12_000);
    // Far past 4.0's default limit of 20 returns, on at least one level (≈ 100 measured here).
    expect(Math.max(...gets.values())).toBeGreaterThan(25);
    expect(new Set(recorder.runs.map((r) => r.id)).size).toBe(delays.length);
    for (const run of recorder.runs) {
      // A run before its due time must say so, and never by more than maxAdvance (+ a round).
      if (run.startedAt < run.dueAt) expect(run).toMatchObject({ early: true });
      expect(run.startedAt).toBeGreaterThanOrEqual(run.dueAt - 2000 - 500);
    }
  });

  test('a quorum lane has two priority levels on 4.x: priority 5+ runs ahead of 0–4', async () => {
    const ns = randomNamespace('r4prio');
    const config = quorumConfig(ns, { lanes: [{ name: 'q', queueType: 'quorum', maxPriority: 9, concurrency: 1 }] });
    const s = await scheduler(config);
    // All waiting before the daemon starts: 12 normal (0–4) first, then 12 high (5–9).
    for (let i = 0; i < 12; i++) await s.publish('q', `n${i}`, { id: `n${i}`, priority: i % 5 });
    for (let i = 0; i < 12; i++) await s.publish('q', `h${i}`, { id: `h${i}`, priority: 5 + (i % 5) });
    const recorder = new Recorder();
    await daemon(config, { q: recorder.wrap() });
    await waitFor(() => recorder.count === 24, 15_000, 'all 24 to run');
    const order = recorder.runs.map((r) => r.id);
    // RabbitMQ serves the high level first but not exclusively (it keeps normal messages from
    // starving), so the test asserts the order on average, not strictly.
    const mean = (prefix: string) => order.reduce((sum, id, i) => (id.startsWith(prefix) ? sum + i : sum), 0) / 12;
    expect(order[0]).toMatch(/^h/);
    expect(mean('h')).toBeLessThan(mean('n'));
    expect(recorder.runs.find((r) => r.id === 'h4')?.priority).toBe(9);
  });

  test('a partitioned lane runs at most its concurrency with global QoS denied', async () => {
    const ns = randomNamespace('r4part');
    const config = quorumConfig(ns, { lanes: [{ name: 'p', concurrency: 2, partitions: 4, maxPriority: 0 }] });
    const s = await scheduler(config);
    let running = 0;
    let peak = 0;
    let done = 0;
    // Published before the daemon starts, so every partition has work waiting at once.
    for (let i = 0; i < 40; i++) await s.publish('p', `m${i}`, { id: `m${i}`, key: `k${i}` });
    await daemon(config, {
      p: async () => {
        peak = Math.max(peak, ++running);
        await sleep(50);
        running--;
        done++;
      },
    });
    await waitFor(() => done === 40, 20_000, 'all 40 to run');
    expect(peak).toBe(2);
  });

  test('a namespace an older orbit declared (3.10 arguments) keeps working, and migrate redeclares it losing nothing', async () => {
    const ns = randomNamespace('r4mig');
    const config = quorumConfig(ns, { lanes: [{ name: 'c', maxPriority: 5 }] });
    // What orbit before this version declared: lazy classic queues, quorum ones without a
    // delivery limit, and dead and unroutable queues of delay.queueType.
    const old = buildTopology(config, brokerFeatures('3.10.8'));
    const ch = await conn.createConfirmChannel();
    for (const e of old.exchanges) await ch.assertExchange(e.name, e.type, { durable: true, arguments: e.arguments });
    for (const q of old.queues) {
      const args: Record<string, unknown> = q.role === 'dead' || q.role === 'unroutable' ? { 'x-queue-type': 'quorum' } : { ...q.arguments };
      delete args['x-delivery-limit'];
      await ch.assertQueue(q.name, { durable: true, arguments: args });
    }
    for (const b of old.bindings) {
      if (b.kind === 'queue') await ch.bindQueue(b.destination, b.source, b.pattern);
      else await ch.bindExchange(b.destination, b.source, b.pattern);
    }
    await ch.close();

    // Publishing works on the old queues: 30 messages due over 3–12 s, 10 due now.
    const s = await scheduler(config);
    const ids = Array.from({ length: 40 }, (_, i) => `m${i}`);
    await Promise.all(ids.map((id, i) => s.publish('c', id, { id, delay: i < 10 ? 0 : 3000 + (i % 10) * 1000 })));

    // The daemon starts on them, says what differs, and runs what is due.
    const lines: Array<Record<string, unknown>> = [];
    const recorder = new Recorder();
    const d = await daemon(config, { c: recorder.wrap() }, capturingLogger(lines));
    expect(d.asserter.drifts().map((x) => x.queue)).toContain(`${ns}.delay.0`);
    expect(d.asserter.unsafeToLook(`${ns}.delay.0`)).toBe(true);
    expect(d.asserter.drifts().find((x) => x.queue === `${ns}.lane.c`)).toMatchObject({ argument: 'x-queue-mode', severity: 'ignored' });
    expect(lines.some((l) => l.level === 'warn' && l.queue === `${ns}.dead` && String(l.msg).includes('orbit migrate'))).toBe(true);
    const exposition = await d.metrics.registry.metrics();
    expect(exposition).toContain(`orbit_queue_drift{queue="${ns}.dead",argument="x-delivery-limit",severity="risky"} 1`);
    await waitFor(() => recorder.count >= 10, 10_000, 'the ten due now to run');
    await d.stop();

    // Migrate with 30 messages still in the delay levels.
    const session = await BrokerSession.open(config, 'cli', silentLogger());
    cleanup.add(() => session.close());
    const migrated = await migrateQueues(session, config);
    expect(migrated.length).toBeGreaterThan(0);
    await session.close();

    // Every queue now has this orbit's arguments: a plain redeclare succeeds.
    const check = await conn.createChannel();
    check.on('error', () => undefined); // the 404 below closes it
    for (const q of buildTopology(config, brokerFeatures('4.0.5')).queues) {
      const r = await check.assertQueue(q.name, { durable: true, arguments: q.arguments });
      expect(r.queue).toBe(q.name);
      if (q.arguments['x-queue-type'] === 'quorum') expect(q.arguments['x-delivery-limit']).toBe(QUORUM_DELIVERY_LIMIT);
    }
    await expect(check.checkQueue(`${ns}.delay.0.migrating`)).rejects.toThrow();
    await check.close().catch(() => undefined);

    const after = new Daemon({ config, handlers: { c: recorder.wrap() }, logger: silentLogger() });
    cleanup.add(() => after.stop());
    await after.start();
    expect(after.asserter.drifts()).toEqual([]);
    await waitFor(() => new Set(recorder.runs.map((r) => r.id)).size === 40, 30_000, 'all 40 to have run');
    // Nothing early: a migrated message is routed again by its own due time.
    for (const run of recorder.runs) expect(run.startedAt).toBeGreaterThanOrEqual(run.dueAt - 50);
  });
});

describeRabbitmq4('the compose broker config on RabbitMQ 4.0', () => {
  test('docker/rabbitmq (rabbitmq.conf, advanced.config, plugins) boots a 4.0 node that orbit runs on', async () => {
    const dir = join(__dirname, '..', '..', 'docker', 'rabbitmq');
    const [management, prometheus] = [await freePort(), await freePort()];
    // The shipped lines as they are, but for the two HTTP ports (free ones here).
    const lines = readFileSync(join(dir, 'rabbitmq.conf'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'))
      .map((l) => (l.startsWith('management.tcp.port') ? `management.tcp.port = ${management}` : l.startsWith('prometheus.tcp.port') ? `prometheus.tcp.port = ${prometheus}` : l));
    const plugins = /\[([^\]]*)\]/.exec(readFileSync(join(dir, 'enabled_plugins'), 'utf8').replace(/%%.*$/gm, ''))![1]!.split(',').map((p) => p.trim());
    expect(plugins).toEqual(['rabbitmq_management', 'rabbitmq_prometheus']);
    const node = new PrivateBroker({ rabbitmq: 4, extraConfig: lines, plugins, advancedConfigFile: join(dir, 'advanced.config') });
    try {
      await node.start();
      // advanced.config took effect, and so did rabbitmq.conf's embed threshold.
      const env = await node.ctl('environment');
      expect(env).toMatch(/\{classic_queue_store_v2_max_cache_size,\s*65536\}/);
      expect(env).toMatch(/\{queue_index_embed_msgs_below,\s*16384\}/);
      expect(env).toMatch(/\{dead_letter_worker_publisher_confirm_timeout,\s*10000\}/);
      // The quorum WAL's bound (the `ra` application's key): its in-memory tables stay small.
      expect(env).toMatch(/\{wal_max_size_bytes,\s*67108864\}/);
      // The compose credentials (default_user), and a message rescheduled once on it, on the shipped defaults.
      const ns = randomNamespace('r4conf');
      const config = testConfig(ns, { amqp: { url: `amqp://orbit:orbit@127.0.0.1:${node.port}` }, lanes: [{ name: 'fast' }] }, { defaults: 'shipped' });
      expect(config.delay.queueType).toBe('quorum');
      const recorder = new Recorder();
      const d = new Daemon({ config, handlers: { fast: recorder.wrap((m) => (m.runs === 0 ? { reschedule: { delay: 1000 } } : undefined)) }, logger: silentLogger() });
      const s = new Scheduler({ config, role: 'cli', logger: silentLogger() });
      try {
        await d.start();
        expect(d.asserter.broker?.version).toMatch(/^4\./);
        await s.publish('fast', 'hello', { id: 'hello' });
        // The reschedule's rung is new: a quorum rung waits 5 s (NEW_QUORUM_QUEUE_SETTLE_MS) before its first publish.
        await waitFor(() => recorder.count === 2, 20_000, 'two runs');
        expect(recorder.runs.map((r) => r.runs)).toEqual([0, 1]);
      } finally {
        await s.close();
        await d.stop();
      }
    } finally {
      await node.stop();
    }
  });
});
