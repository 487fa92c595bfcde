/**
 * /readyz follows the broker: a private RabbitMQ node's app is stopped and started again
 * under a running daemon (and finally the node is killed). /healthz keeps answering
 * throughout; the daemon reconnects on its own and processes every message published
 * before the outage.
 */
import { request } from 'node:http';
import { Daemon, Scheduler } from '../../src';
import { silentLogger } from '../../src/logging/logger';
import { randomNamespace, testConfig } from '../helpers/broker';
import { freePort } from '../helpers/private-broker';
import { usePrivateBroker } from '../helpers/private-broker-suite';
import { waitFor } from '../helpers/wait';

const privateBroker = usePrivateBroker();

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of `name{labels}` in Prometheus text (label order as prom-client prints it). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) have[l[1]!] = l[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

test('/readyz turns 503 while the broker is down and 200 again after the daemon reconnects', async () => {
  const b = privateBroker();
  const ns = randomNamespace('ready');
  const port = await freePort();
  const LANE = 'r';
  const config = testConfig(ns, {
    amqp: { url: b.url, reconnect: '500ms', heartbeat: '5s' },
    delay: { unit: '1s', levels: 4 },
    http: { port, host: '127.0.0.1' },
    lanes: [{ name: LANE, concurrency: 2 }],
  });
  const seen = new Map<string, number>();
  let holding = true;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const daemon = new Daemon({
    config,
    logger: silentLogger(),
    handlers: {
      [LANE]: async (m) => {
        seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
        if (holding) await gate;
      },
    },
  });
  const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
  const scrape = async () => (await get(port, '/metrics')).body;
  try {
    await daemon.start();
    let ready = await get(port, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready' });

    // Persistent messages in durable (lazy) queues: 2 in flight (held by their handlers,
    // concurrency 2), 8 waiting in the lane queue, and 5 in the delay levels, due after the
    // outage (their TTL runs out while the broker is down or just after).
    const now = Array.from({ length: 10 }, (_, i) => `ready-now-${i}`);
    const later = Array.from({ length: 5 }, (_, i) => `ready-later-${i}`);
    const ids = [...now, ...later];
    await Promise.all(now.map((id) => scheduler.publish(LANE, { id }, { id })));
    await Promise.all(later.map((id) => scheduler.publish(LANE, { id }, { id, delay: '5s' })));
    await scheduler.close();
    await waitFor(() => seen.size === 2, 10_000, 'two handlers running');

    // Outage: the broker app stops, every client is disconnected.
    await b.stopApp();
    await waitFor(async () => (await get(port, '/readyz')).status === 503, 5000, '/readyz 503');
    // The held handlers finish now, on a channel that is gone: their acks are never sent.
    holding = false;
    release();
    expect(seen.size).toBe(2);
    ready = await get(port, '/readyz');
    expect(JSON.parse(ready.body)).toEqual({ status: 'not ready', reason: expect.stringMatching(/\S/) });
    const health = await get(port, '/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
    let text = await scrape();
    expect(metric(text, 'orbit_amqp_connected', { connection: 'publish' })).toBe(0);
    expect(metric(text, 'orbit_amqp_connected', { connection: 'consume' })).toBe(0);
    expect(metric(text, 'orbit_ready')).toBe(0);

    // Back: the connection manager retries every 500 ms.
    await b.startApp();
    await waitFor(async () => (await get(port, '/readyz')).status === 200, 15_000, '/readyz 200 again');
    expect(JSON.parse((await get(port, '/readyz')).body)).toEqual({ status: 'ready' });
    text = await scrape();
    expect(metric(text, 'orbit_amqp_connected', { connection: 'publish' })).toBe(1);
    expect(metric(text, 'orbit_amqp_connected', { connection: 'consume' })).toBe(1);
    expect(metric(text, 'orbit_amqp_reconnects_total', { connection: 'publish' })).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'orbit_amqp_reconnects_total', { connection: 'consume' })).toBeGreaterThanOrEqual(1);
    expect(metric(text, 'orbit_ready')).toBe(1);

    // Every message published before the outage is processed after it. The two that were in
    // flight finished (done) on the lost channel: the broker hands them out again, unacked, and
    // the daemon drops those copies of runs it settled (`worker/recent-runs.ts`) rather than
    // run them twice.
    await waitFor(() => ids.every((id) => seen.has(id)), 20_000, 'all pre-outage messages processed');
    expect([...seen.keys()].sort()).toEqual([...ids].sort());
    await waitFor(async () => metric(await scrape(), 'orbit_copies_dropped_total', { lane: LANE, kind: 'exact' }) === 2, 10_000, 'the two copies dropped');
    await waitFor(() => daemon.inFlight === 0, 10_000, 'nothing in flight');
    expect([...seen.values()].filter((n) => n === 1)).toHaveLength(15);

    // A crash of the node: not ready again, still healthy, and stop does not hang.
    await b.kill();
    await waitFor(async () => (await get(port, '/readyz')).status === 503, 15_000, '/readyz 503 after kill');
    expect((await get(port, '/healthz')).status).toBe(200);
    const stopping = Date.now();
    await daemon.stop();
    expect(Date.now() - stopping).toBeLessThan(10_000);
  } finally {
    release();
    await scheduler.close();
    await daemon.stop();
  }
});
