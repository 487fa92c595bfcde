/**
 * /metrics, /healthz and /readyz of a running daemon on the shared broker: a known
 * workload (20 done, 5 rescheduled once then done, 3 dead) must show up as exact counts.
 */
import { request } from 'node:http';
import { Daemon, Scheduler, UnrecoverableError } from '../../src';
import { silentLogger } from '../../src/logging/logger';
import { deleteNamespace, randomNamespace, testConfig } from '../helpers/broker';
import { freePort } from '../helpers/private-broker';
import { waitFor } from '../helpers/wait';

interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format → samples (comments skipped). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Samples of `name` whose labels include `labels`. */
function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one value of `name{labels}`; fails when there is none or more than one. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = find(samples, name, labels);
  if (found.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0]!.value;
}

/** Like `value`, but a series not (yet) exported counts as 0. */
function valueOr0(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return find(samples, name, labels).length === 0 ? 0 : value(samples, name, labels);
}

test('a known workload shows exact counts on /metrics; /healthz, /readyz and 404 answer', async () => {
  const ns = randomNamespace('met');
  const port = await freePort();
  const LANE = 'm';
  const CONCURRENCY = 4;
  const config = testConfig(ns, {
    // Binary levels: the test reads the depth of each of the topology's delay queues.
    delay: { unit: '1s', levels: 3, tolerance: 0 },
    http: { port, host: '127.0.0.1' },
    lanes: [{ name: LANE, concurrency: CONCURRENCY }],
  });
  let settled = 0;
  const daemon = new Daemon({
    config,
    logger: silentLogger(),
    queueSampleIntervalMs: 200,
    observer: { messageSettled: () => settled++ },
    handlers: {
      [LANE]: async (m) => {
        const { kind } = m.json<{ kind: 'done' | 'again' | 'dead' }>();
        if (kind === 'dead') throw new UnrecoverableError('gone for good');
        if (kind === 'again' && m.runs === 0) return { reschedule: { delay: 1000 } };
        return undefined;
      },
    },
  });
  const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
  try {
    await daemon.start();
    expect(daemon.httpPort).toBe(port);
    const bodies = [
      ...Array.from({ length: 20 }, () => ({ kind: 'done' })),
      ...Array.from({ length: 5 }, () => ({ kind: 'again' })),
      ...Array.from({ length: 3 }, () => ({ kind: 'dead' })),
    ];
    await Promise.all(bodies.map((b) => scheduler.publish(LANE, b)));
    await waitFor(() => settled === 33, 20_000, '33 settlements');

    // Wait for a queue sample (every 200 ms) taken after the last settlement: 3 dead letters,
    // every other queue empty, and every slot free.
    const depthOf = (samples: Sample[], queue: string) => find(samples, 'orbit_queue_messages', { queue })[0]?.value;
    await waitFor(
      async () => {
        const samples = parseMetrics((await get(port, '/metrics')).body);
        return (
          daemon.topology.queues.every((q) => depthOf(samples, q.name) === (q.role === 'dead' ? 3 : 0)) &&
          value(samples, 'orbit_in_flight', { lane: LANE }) === 0
        );
      },
      10_000,
      'queue depths sampled after the workload and nothing in flight',
    );
    const res = await get(port, '/metrics');
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
    const samples = parseMetrics(res.body);

    // Outcomes: 20 done + the 5 rescheduled on their second run; 5 rescheduled; 3 dead.
    expect(value(samples, 'orbit_messages_total', { lane: LANE, outcome: 'done' })).toBe(25);
    expect(value(samples, 'orbit_messages_total', { lane: LANE, outcome: 'rescheduled' })).toBe(5);
    expect(value(samples, 'orbit_messages_total', { lane: LANE, outcome: 'dead' })).toBe(3);
    expect(valueOr0(samples, 'orbit_messages_total', { lane: LANE, outcome: 'retried' })).toBe(0);
    // What the daemon itself published (the Scheduler's own publishes are not the daemon's).
    expect(value(samples, 'orbit_published_total', { kind: 'reschedule' })).toBe(5);
    expect(value(samples, 'orbit_published_total', { kind: 'dead' })).toBe(3);
    expect(valueOr0(samples, 'orbit_published_total', { kind: 'retry' })).toBe(0);
    expect(valueOr0(samples, 'orbit_published_total', { kind: 'publish' })).toBe(0);
    expect(value(samples, 'orbit_publish_confirm_seconds_count')).toBe(8);
    // Every run is timed and its lateness observed.
    expect(value(samples, 'orbit_handler_duration_seconds_count', { lane: LANE })).toBe(33);
    expect(value(samples, 'orbit_lateness_seconds_count', { lane: LANE })).toBe(33);
    // Every message was published by this orbit, so every run is judged against its bound.
    expect(value(samples, 'orbit_lateness_bound_ratio_count', { lane: LANE })).toBe(33);
    expect(value(samples, 'orbit_handler_duration_seconds_bucket', { lane: LANE, le: '+Inf' })).toBe(33);
    expect(value(samples, 'orbit_in_flight', { lane: LANE })).toBe(0);
    expect(value(samples, 'orbit_lane_concurrency', { lane: LANE })).toBe(CONCURRENCY);

    // A depth for every queue of the topology, with its role.
    const queues = daemon.topology.queues;
    expect(queues.map((q) => q.role).sort()).toEqual(['dead', 'delay', 'delay', 'delay', 'lane', 'unroutable']);
    for (const q of queues) {
      expect(find(samples, 'orbit_queue_messages', { queue: q.name, role: q.role })).toHaveLength(1);
    }
    expect(value(samples, 'orbit_queue_messages', { queue: `${ns}.dead`, role: 'dead' })).toBe(3);
    expect(value(samples, 'orbit_queue_messages', { queue: `${ns}.lane.${LANE}`, role: 'lane' })).toBe(0);
    expect(value(samples, 'orbit_queue_messages', { queue: `${ns}.unroutable`, role: 'unroutable' })).toBe(0);
    for (const q of queues.filter((q) => q.role === 'delay')) {
      expect(value(samples, 'orbit_queue_messages', { queue: q.name })).toBe(0);
    }

    // Connections, flow control, readiness, and the process metrics.
    expect(value(samples, 'orbit_amqp_connected', { connection: 'consume' })).toBe(1);
    expect(value(samples, 'orbit_amqp_connected', { connection: 'publish' })).toBe(1);
    expect(value(samples, 'orbit_amqp_blocked', { connection: 'consume' })).toBe(0);
    expect(value(samples, 'orbit_amqp_blocked', { connection: 'publish' })).toBe(0);
    expect(find(samples, 'orbit_amqp_reconnects_total').every((s) => s.value === 0)).toBe(true);
    // Exported, and no queue stalled the publish channel (test/unit/stalled-channel.test.ts shows one that does).
    expect(res.body).toContain('# TYPE orbit_publish_stalled_queue gauge');
    expect(find(samples, 'orbit_publish_stalled_queue')).toEqual([]);
    // The consumer watch restarted nothing (test/integration/consumer-watch.test.ts shows one it does).
    expect(value(samples, 'orbit_consumer_restarts_total', { lane: LANE })).toBe(0);
    // No copy of a settled run came back (test/integration/recent-runs.test.ts shows some that do).
    for (const kind of ['exact', 'fork']) expect(value(samples, 'orbit_copies_dropped_total', { lane: LANE, kind })).toBe(0);
    expect(value(samples, 'orbit_ready')).toBe(1);
    expect(value(samples, 'orbit_process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(find(samples, 'orbit_nodejs_eventloop_lag_seconds')).toHaveLength(1);
    // Labels stay low-cardinality: no message ids anywhere.
    expect(samples.some((s) => Object.keys(s.labels).some((k) => /id/i.test(k)))).toBe(false);

    const health = await get(port, '/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
    const ready = await get(port, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready' });
    const missing = await get(port, '/nope');
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body)).toMatchObject({ error: 'not found' });
  } finally {
    await scheduler.close();
    await daemon.stop();
    await deleteNamespace(ns);
  }
  // Stopping closes the HTTP server too.
  await expect(get(port, '/healthz')).rejects.toThrow();
});
