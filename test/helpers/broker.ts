import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { loadConfig } from '../../src/config/load';
import type { ResolvedConfig } from '../../src/config/types';
import { type Headers, writeState } from '../../src/message/headers';
import { names } from '../../src/naming/names';
import { buildTopology } from '../../src/topology/build';
import { AMQP_URL, rabbitmqctl } from './rabbitmq';

/**
 * The broker under test: the shared broker every machine (and CI) runs, unless
 * ORBIT_TEST_AMQP_URL names another (then ORBIT_TEST_RABBITMQ_NODE, and for a 4.0 node
 * ORBIT_TEST_RABBITMQ4_ROOT, say where its rabbitmqctl calls go: see ./rabbitmq.ts).
 */
export { AMQP_URL, rabbitmqctl };

/** A random namespace, so tests never see each other's queues on the shared broker. */
export function randomNamespace(prefix = 't'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/**
 * A resolved config for tests: given namespace, the shared broker, quiet logs, and short
 * delay levels unless the test asks otherwise. `lanes` use the raw (file) shape.
 *
 * Work-ahead is off in lanes that do not mention it: it is on by default in orbit, and
 * would run delayed messages early in tests that check timing. Its own tests turn it on.
 */
export function testConfig(namespace: string, settings: Record<string, unknown> = {}, options: TestConfigOptions = {}): ResolvedConfig {
  const pinned = options.defaults !== 'shipped';
  const lanes = Array.isArray(settings.lanes)
    ? (settings.lanes as Record<string, unknown>[]).map((l) => {
        const lane = 'workAhead' in l ? l : { ...l, workAhead: false };
        return pinned ? unbundledUnlessSet(lane) : lane;
      })
    : settings.lanes;
  const raw: Record<string, unknown> = {
    namespace,
    amqp: { url: AMQP_URL, reconnect: '500ms' },
    delay: { unit: '1s', levels: 8 },
    log: { level: 'silent' },
    http: { port: 0 },
    shutdown: { timeout: '10s' },
    ...settings,
    ...(lanes === undefined ? {} : { lanes }),
  };
  if (pinned) raw.delay = pinnedDelay(raw.delay);
  // Every key becomes an override, exactly as CLI flags pass them; an empty env keeps the
  // developer's own ORBIT_* variables out of the tests.
  const overrides: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) flatten(key, value, overrides);
  return loadConfig({ overrides, env: {} });
}

export interface TestConfigOptions {
  /**
   * `pinned` (the default): delay queues are classic unless the test sets `delay.queueType`,
   * `delay.hold` is 0 unless the test sets it (unset, unbundled lanes hold the rungs up to a
   * minute, and many tests look into those rungs: their own tests and work-ahead's set it),
   * and lanes are unbundled unless the test sets `bundle`. Most tests time a run against its
   * due time to within a unit, and the shipped quorum delay queues add a one-off wait of
   * `NEW_QUORUM_QUEUE_SETTLE_MS` (5 s) to each rung's first use (crash safety,
   * `src/amqp/new-quorum-queue.ts`); many count AMQP messages in queues, which bundles merge.
   * `shipped`: exactly the shipped defaults, for the tests of what a user gets (the fault
   * suite's broker crashes, the quickstart).
   */
  readonly defaults?: 'pinned' | 'shipped';
}

function pinnedDelay(delay: unknown): unknown {
  if (delay === null || typeof delay !== 'object' || Array.isArray(delay)) return delay;
  return { ...('queueType' in delay ? {} : { queueType: 'classic' }), ...('hold' in delay ? {} : { hold: '0s' }), ...delay };
}

/** A lane as written, with `bundle.max` 1 unless the test set `bundle`: see `TestConfigOptions`. */
function unbundledUnlessSet<T extends Record<string, unknown>>(lane: T): T {
  return 'bundle' in lane ? lane : { ...lane, bundle: { max: 1 } };
}

function flatten(path: string, value: unknown, out: Record<string, string>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(`${path}.${k}`, v, out);
  } else {
    out[path] = typeof value === 'string' ? value : JSON.stringify(value);
  }
}


/**
 * Writes `orbit.json` under `dir` for an `orbit` child process and returns its path: the
 * given namespace, the shared broker, 4 one-second delay levels, info logs and a random
 * metrics port, unless `settings` (the raw file shape) replaces those keys.
 */
export function writeConfigFile(dir: string, namespace: string, settings: Record<string, unknown>): string {
  const file = join(dir, 'orbit.json');
  const config = {
    namespace,
    amqp: { url: AMQP_URL, reconnect: '500ms' },
    delay: { unit: '1s', levels: 4 },
    log: { level: 'info' },
    http: { port: 0 },
    ...settings,
  };
  // Classic delay queues, no delay.hold and unbundled lanes unless the test says otherwise: see `TestConfigOptions`.
  config.delay = pinnedDelay(config.delay) as typeof config.delay;
  const lanes = (config as Record<string, unknown>).lanes;
  if (Array.isArray(lanes)) (config as Record<string, unknown>).lanes = lanes.map((l: Record<string, unknown>) => unbundledUnlessSet(l));
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** A plain amqplib connection for test assertions (counting, peeking, cleaning up). */
export async function withChannel<T>(fn: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
  const conn = await amqplib.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** A message as orbit's state headers describe it, for `sendToLane`. */
export interface LaneMessage {
  readonly id: string;
  readonly dueAt: number;
  readonly runs: number;
  readonly attempt?: number;
  /** 0 or absent: no generation header (a message from before generations). */
  readonly generation?: number;
  /** More headers (a waypoint mark, say). */
  readonly headers?: Headers;
}

/**
 * Publishes messages straight to a lane's queue with orbit's state headers (`writeState`), as
 * the broker would hand a copy back or a hop would arrive: what the worker must then do with it.
 */
export async function sendToLane(namespace: string, lane: string, messages: readonly LaneMessage[]): Promise<void> {
  await withChannel(async (ch) => {
    for (const m of messages) {
      const headers = writeState(m.headers ?? {}, { dueAt: m.dueAt, runs: m.runs, attempt: m.attempt ?? 0, lane, generation: m.generation ?? 0 });
      ch.sendToQueue(names(namespace).lane(lane), Buffer.from(`{"id":"${m.id}"}`), { messageId: m.id, persistent: true, headers });
    }
    // Sent before the channel closes: a plain channel has no confirm to wait for.
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
}

/** Message count of a queue (0 when it does not exist). */
export async function queueDepth(queue: string): Promise<number> {
  return withChannel(async (ch) => (await ch.checkQueue(queue)).messageCount).catch(() => 0);
}

/** Messages left in any queue of the config's topology, by queue name (queues with none are left out). */
export async function nonEmptyQueues(config: ResolvedConfig): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const q of buildTopology(config).queues) {
    const depth = await queueDepth(q.name);
    if (depth > 0) out[q.name] = depth;
  }
  return out;
}

/**
 * Deletes every queue and exchange of a namespace. Names are listed with rabbitmqctl so
 * nothing the test declared is missed, and nothing outside the namespace is touched.
 */
export async function deleteNamespace(namespace: string): Promise<void> {
  const prefix = `${namespace}.`;
  const [queues, exchanges] = await Promise.all([listNames('list_queues'), listNames('list_exchanges')]);
  const conn = await amqplib.connect(AMQP_URL);
  try {
    for (const q of queues.filter((n) => n.startsWith(prefix))) {
      const ch = await conn.createChannel();
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    for (const e of exchanges.filter((n) => n.startsWith(prefix))) {
      const ch = await conn.createChannel();
      await ch.deleteExchange(e).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

async function listNames(command: 'list_queues' | 'list_exchanges'): Promise<string[]> {
  const stdout = await rabbitmqctl('-q', command, 'name', '--no-table-headers');
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/**
 * Force-closes this namespace's orbit connections on the broker, found by the name orbit
 * gives them (`orbit:<namespace>:<role>`). Never touches other clients' connections.
 * Returns how many were closed.
 */
export async function closeOrbitConnections(namespace: string, role?: string): Promise<number> {
  const stdout = await rabbitmqctl('-q', 'list_connections', 'pid', 'client_properties', '--no-table-headers');
  const wanted = role ? `orbit:${namespace}:${role}` : `orbit:${namespace}:`;
  let closed = 0;
  for (const line of stdout.split('\n')) {
    const pid = line.match(/^(<[^>]+>)/)?.[1];
    // rabbitmqctl 3.10 prints `{"connection_name","orbit:…"}`; older ones `{<<"connection_name">>,longstr,<<"orbit:…">>}`.
    const name = line.match(/\{"connection_name","([^"]+)"\}|\{<<"connection_name">>,longstr,<<"([^"]+)">>\}/)?.slice(1).find(Boolean);
    if (!pid || !name) continue;
    if (role ? name !== wanted : !name.startsWith(wanted)) continue;
    await rabbitmqctl('-q', 'close_connection', pid, 'test: forced close');
    closed++;
  }
  return closed;
}

