import amqplib from 'amqplib';
import { Daemon, Scheduler, UnrecoverableError } from '../../src';
import { AMQP_URL, deleteNamespace, queueDepth, rabbitmqctl, randomNamespace, testConfig, withChannel } from '../helpers/broker';
import { waitFor } from '../helpers/wait';

describe('bundles', () => {
  const namespaces: string[] = [];
  afterAll(async () => {
    for (const ns of namespaces) await deleteNamespace(ns);
  });

  test('10,000 ids through a bundled lane, each rescheduled 3 times: exactly 4 runs each; one failing id dies alone', async () => {
    const ns = randomNamespace('bundle');
    namespaces.push(ns);
    const config = testConfig(ns, {
      lanes: [{ name: 'b', concurrency: 200, bundle: { max: 100, linger: '50ms' }, retry: { maxAttempts: 1 } }],
    });
    const N = 10_000;
    const runs = new Map<string, number[]>();
    let maxRunning = 0;
    let running = 0;
    const daemon = new Daemon({
      config,
      handlers: {
        b: async (m) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          try {
            if (m.id === 'poison') throw new UnrecoverableError('always fails');
            const list = runs.get(m.id) ?? [];
            list.push(m.runs);
            runs.set(m.id, list);
            expect(m.json()).toEqual({ id: m.id, step: m.runs });
            return m.runs < 3 ? { reschedule: { delay: 1000, body: { id: m.id, step: m.runs + 1 } } } : undefined;
          } finally {
            running--;
          }
        },
      },
    });
    const scheduler = new Scheduler({ config });
    try {
      await daemon.start();
      const published = [];
      for (let i = 0; i < N; i++) published.push(scheduler.publish('b', { id: `m-${i}`, step: 0 }, { id: `m-${i}` }));
      published.push(scheduler.publish('b', { id: 'poison', step: 0 }, { id: 'poison' }));
      await Promise.all(published);
      await waitFor(() => [...runs.values()].filter((r) => r.length === 4).length === N, 60_000, 'four runs each');
      await new Promise((r) => setTimeout(r, 1500));
      for (const [id, r] of runs) expect([id, r]).toEqual([id, [0, 1, 2, 3]]);
      expect(runs.size).toBe(N);
      expect(maxRunning).toBeLessThanOrEqual(200);
      // The poison message is alone in dead, unbundled, with its own id.
      expect(await queueDepth(`${ns}.dead`)).toBe(1);
      const conn = await amqplib.connect(AMQP_URL);
      const ch = await conn.createChannel();
      const dead = await ch.get(`${ns}.dead`, { noAck: false });
      expect(dead && dead.properties.messageId).toBe('poison');
      expect(dead && JSON.parse(dead.content.toString())).toEqual({ id: 'poison', step: 0 });
      expect(dead && dead.properties.headers?.['x-orbit-bundle']).toBeUndefined();
      await conn.close();
      const text = await daemon.metrics.registry.getSingleMetricAsString('orbit_messages_total');
      expect(text).toContain(`orbit_messages_total{lane="b",outcome="done"} ${N}`);
      expect(text).toContain(`orbit_messages_total{lane="b",outcome="rescheduled"} ${3 * N}`);
      const sizes = await daemon.metrics.registry.getSingleMetricAsString('orbit_bundle_size');
      const sum = Number(/orbit_bundle_size_sum\{lane="b"\} (\d+)/.exec(sizes)?.[1]);
      const count = Number(/orbit_bundle_size_count\{lane="b"\} (\d+)/.exec(sizes)?.[1]);
      // Every logical message arrived in some delivery, and bundling really happened.
      expect(sum).toBe(4 * N + 1);
      expect(sum / count).toBeGreaterThan(5);
    } finally {
      await scheduler.close();
      await daemon.stop();
    }
  }, 120_000);

  test('bundled and single messages interoperate in one lane', async () => {
    const ns = randomNamespace('bundle');
    namespaces.push(ns);
    const bundled = testConfig(ns, { lanes: [{ name: 'm', bundle: { max: 50, linger: '20ms' } }] });
    const single = testConfig(ns, { lanes: [{ name: 'm' }] });
    const seen = new Map<string, number[]>();
    const daemon = new Daemon({
      config: bundled,
      handlers: {
        m: (msg) => {
          seen.set(msg.id, [...(seen.get(msg.id) ?? []), msg.runs]);
          return msg.runs === 0 ? { reschedule: { delay: 1000 } } : undefined;
        },
      },
    });
    const a = new Scheduler({ config: bundled });
    const b = new Scheduler({ config: single });
    try {
      await daemon.start();
      await Promise.all([
        ...Array.from({ length: 100 }, (_, i) => a.publish('m', { i }, { id: `bundled-${i}` })),
        ...Array.from({ length: 100 }, (_, i) => b.publish('m', { i }, { id: `single-${i}` })),
        // A message with headers of its own is never bundled, even on a bundled lane.
        a.publish('m', { x: 1 }, { id: 'with-headers', headers: { trace: 'abc' } }),
      ]);
      await waitFor(() => [...seen.values()].filter((r) => r.length === 2).length === 201, 20_000, 'two runs each');
      for (const [, r] of seen) expect(r).toEqual([0, 1]);
    } finally {
      await a.close();
      await b.close();
      await daemon.stop();
    }
  }, 60_000);

  test('closing sends what lingers: a Scheduler close and a daemon stop never wait out (or drop) a long linger', async () => {
    const ns = randomNamespace('bundle');
    namespaces.push(ns);
    // Linger of an hour: without the close-time flush nothing below would be sent for an hour.
    // Binary levels: the test finds the rescheduled bundle in delay level 5.
    const config = testConfig(ns, { delay: { unit: '1s', levels: 8, tolerance: 0 }, lanes: [{ name: 'l', concurrency: 50, bundle: { max: 1000, linger: '1h' } }] });
    const scheduler = new Scheduler({ config });
    await scheduler.connect();
    // `sendWith`, as the bulk loaders use it, waits out the lane's linger (an awaited `publish`
    // waits only a timer turn: next test).
    const settled: boolean[] = [];
    const published = Array.from({ length: 20 }, (_, i) =>
      new Promise<void>((resolve, reject) =>
        scheduler.sendWith(
          { id: `l-${i}`, lane: 'l', body: Buffer.from(JSON.stringify({ i })), priority: 0, dueAt: Date.now(), delayMs: 0, runs: 0, attempt: 0, generation: 0, headers: {} },
          (_t, ok, err) => (settled.push(ok), ok ? resolve() : reject(err)),
          i,
        ),
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(settled).toEqual([]); // still lingering
    const closedAt = Date.now();
    await scheduler.close();
    await Promise.all(published); // every publish confirmed, none rejected
    expect(Date.now() - closedAt).toBeLessThan(5_000);
    expect(await queueDepth(`${ns}.lane.l`)).toBe(1); // one bundle of 20

    const runs = new Map<string, number>();
    const daemon = new Daemon({
      config,
      handlers: {
        l: (m) => {
          runs.set(m.id, (runs.get(m.id) ?? 0) + 1);
          return { reschedule: { delay: 60_000 } };
        },
      },
    });
    await daemon.start();
    // All 20 ran; their replacements linger (1 h), so the delivery cannot be acked yet.
    await waitFor(() => runs.size === 20, 10_000, '20 runs');
    const stoppedAt = Date.now();
    await daemon.stop();
    expect(Date.now() - stoppedAt).toBeLessThan(5_000); // not the 10 s shutdown timeout
    // The replacements went out and were confirmed, so the delivery was acked: nothing comes back.
    expect(await queueDepth(`${ns}.lane.l`)).toBe(0);
    expect(await queueDepth(`${ns}.delay.5`)).toBe(1); // 60 s = 0b111100: enters at level 5, one bundle
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  }, 60_000);

  test('an awaited publish on a bundled lane waits one timer turn, not its tolerance: a lone one is confirmed at once, a batch shares one bundle', async () => {
    const ns = randomNamespace('bundle');
    namespaces.push(ns);
    // The ladder at 2 %: a daemon's replacement 1 h ahead may wait ~36 s for company.
    const config = testConfig(ns, { delay: { unit: '1s', levels: 12, tolerance: '2%' }, lanes: [{ name: 'p', bundle: { max: 100, linger: '100ms' } }] });
    const scheduler = new Scheduler({ config });
    try {
      await scheduler.connect();
      await scheduler.publish('p', { warm: true }, { id: 'warm', delay: '1h' }); // declares the rung
      const started = Date.now();
      await scheduler.publish('p', { lone: true }, { id: 'lone', delay: '1h' });
      // One timer turn and a confirm (ms); not the linger (100 ms), let alone the tolerance.
      expect(Date.now() - started).toBeLessThan(1000);
      await Promise.all(Array.from({ length: 50 }, (_, i) => scheduler.publish('p', { i }, { delay: '1h' })));
    } finally {
      await scheduler.close();
    }
    const listed = await rabbitmqctl('-q', 'list_queues', 'name', '--no-table-headers');
    const rungs = listed.split('\n').map((l) => l.trim()).filter((n) => n.startsWith(`${ns}.wait:`));
    expect(rungs).toHaveLength(1);
    // The warm-up, the lone one, and the 50 published together as one bundle.
    expect(await queueDepth(rungs[0]!)).toBe(3);
    // A bundle of one goes as the plain message, with its own id.
    const got = await withChannel(async (ch) => [await ch.get(rungs[0]!), await ch.get(rungs[0]!), await ch.get(rungs[0]!)]);
    expect(got.map((m) => (m ? [m.properties.messageId, m.properties.headers?.['x-orbit-bundle'] ?? null] : null))).toEqual([
      ['warm', null],
      ['lone', null],
      [expect.any(String), expect.any(Number)],
    ]);
  }, 60_000);

  test('concurrency below bundle.max: handlers do not wait for their replacements to leave a lingering bundle', async () => {
    const ns = randomNamespace('bundle');
    namespaces.push(ns);
    // 5 handler slots, bundles of 100, linger 3 s: if a slot were held until the replacement
    // is confirmed, each 5 runs would wait out a linger (300 messages ≈ 180 s).
    const config = testConfig(ns, { lanes: [{ name: 'c', concurrency: 5, bundle: { max: 100, linger: '3s' } }] });
    const scheduler = new Scheduler({ config });
    let running = 0;
    let maxRunning = 0;
    let settled = 0;
    const daemon = new Daemon({
      config,
      handlers: {
        c: async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((r) => setTimeout(r, 2));
          running--;
          return { reschedule: { delay: 3_600_000 } };
        },
      },
      observer: { messageSettled: () => void settled++ },
    });
    try {
      await Promise.all(Array.from({ length: 300 }, (_, i) => scheduler.publish('c', { i }, { id: `c-${i}` })));
      const started = Date.now();
      await daemon.start();
      await waitFor(() => settled === 300, 20_000, '300 settled');
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(maxRunning).toBeLessThanOrEqual(5);
    } finally {
      await scheduler.close();
      await daemon.stop();
    }
    expect(await queueDepth(`${ns}.lane.c`)).toBe(0);
  }, 60_000);
});
