import { randomBytes } from 'node:crypto';
import amqplib from 'amqplib';
import { loadConfig } from '../../src/config/load';
import type { ResolvedConfig } from '../../src/config/types';
import { benchCtl } from './ctl';


/** The broker benchmarks run against: `--amqp-url`, else ORBIT_BENCH_AMQP_URL, else the test broker. */
export function defaultAmqpUrl(): string {
  return process.env.ORBIT_BENCH_AMQP_URL ?? process.env.ORBIT_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
}

/** A fresh namespace per contender per run, so runs never see each other's queues. */
export function randomNamespace(prefix = 'bench'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/**
 * An orbit config for a benchmark, built the way the CLI builds one from flags: every key is
 * an override, and the environment is empty so a developer's ORBIT_* variables stay out.
 * Defaults are orbit's own (delay unit 1 s, 28 levels, classic lazy queues) unless `settings`
 * says otherwise, but for bundles (below); logging is silent and the HTTP server is off.
 */
export function benchConfig(namespace: string, amqpUrl: string, settings: Record<string, unknown> = {}): ResolvedConfig {
  // A benchmark names its bundling: a lane that does not set `bundle` is unbundled, whatever
  // orbit's default (100 since session 14), so the unbundled contenders stay unbundled.
  const lanes = Array.isArray(settings.lanes)
    ? (settings.lanes as Record<string, unknown>[]).map((l) => ('bundle' in l ? l : { ...l, bundle: { max: 1 } }))
    : settings.lanes;
  const raw = {
    namespace,
    amqp: { url: amqpUrl },
    log: { level: 'silent' },
    http: { port: 0 },
    ...settings,
    ...(lanes === undefined ? {} : { lanes }),
  };
  const overrides: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) flatten(key, value, overrides);
  return loadConfig({ overrides, env: {} });
}

function flatten(path: string, value: unknown, out: Record<string, string>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(`${path}.${k}`, v, out);
  } else {
    out[path] = typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/** Runs `fn` on a short-lived plain channel of its own connection. */
export async function withChannel<T>(amqpUrl: string, fn: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
  const conn = await amqplib.connect(amqpUrl);
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

/** Ready messages in `queue` (passive declare); undefined when it does not exist. */
export async function queueDepth(amqpUrl: string, queue: string): Promise<number | undefined> {
  return withChannel(amqpUrl, async (ch) => (await ch.checkQueue(queue)).messageCount).catch(() => undefined);
}

/** Polls until `queue` holds exactly `count` ready messages; throws after `timeoutMs`. */
export async function waitForDepth(amqpUrl: string, queue: string, count: number, timeoutMs: number): Promise<void> {
  const conn = await amqplib.connect(amqpUrl);
  try {
    const ch = await conn.createChannel();
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    for (;;) {
      last = (await ch.checkQueue(queue)).messageCount;
      if (last === count) return;
      if (Date.now() > deadline) throw new Error(`queue ${queue} holds ${last} messages, expected ${count} (waited ${timeoutMs} ms)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/**
 * Deletes every queue and exchange whose name starts with `<namespace>.`. Names are listed
 * with rabbitmqctl so nothing a contender declared is missed; `known` (the names the
 * contender knows it declared) are deleted too, which is all that happens when rabbitmqctl
 * is not available (a remote broker). Nothing outside the namespace is touched.
 */
export async function deleteNamespace(amqpUrl: string, namespace: string, known: { queues?: readonly string[]; exchanges?: readonly string[] } = {}): Promise<void> {
  const prefix = `${namespace}.`;
  const listed = await Promise.all([listNames('list_queues'), listNames('list_exchanges')]).catch(() => [[], []] as string[][]);
  const queues = new Set([...(known.queues ?? []), ...listed[0]!].filter((n) => n.startsWith(prefix)));
  const exchanges = new Set([...(known.exchanges ?? []), ...listed[1]!].filter((n) => n.startsWith(prefix)));
  const conn = await amqplib.connect(amqpUrl);
  // RabbitMQ 3.10 can fail a delete racing another with a connection-level 541 (an internal
  // error in the channel): the clean-up is best effort, and must not crash the bench with an
  // unhandled 'error' event.
  conn.on('error', () => undefined);
  try {
    // A delete of something already gone closes the channel on some brokers: one channel each,
    // a few at a time (a tolerance ladder declares hundreds of queues on demand).
    await inParallel([...queues], DELETE_PARALLELISM, async (q) => {
      const ch = await conn.createChannel();
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    });
    // Exchanges one at a time: RabbitMQ 3.10 crashes the deleting channel's connection (541,
    // `rabbit_exchange:callback(undefined, remove_bindings, …)`) when exchanges bound to each
    // other (the binary levels of a tolerance-0 layout) are deleted concurrently. A namespace has
    // few exchanges, so this costs nothing.
    for (const e of exchanges) {
      const ch = await conn.createChannel();
      await ch.deleteExchange(e).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

const DELETE_PARALLELISM = 8;

async function inParallel<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

async function listNames(command: 'list_queues' | 'list_exchanges'): Promise<string[]> {
  // Bounded: a node busy with a stuck queue can keep rabbitmqctl waiting; the known names are deleted anyway.
  const stdout = await benchCtl(['-q', command, 'name', '--no-table-headers'], { timeoutMs: 120_000 });
  return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}
