import amqplib from 'amqplib';
import type { QueueType } from '../../src/config/types';
import { routeDelay } from '../../src/delay/routing';
import { Scheduler } from '../../src/publish/scheduler';
import { seed, type SeedItem } from '../../src/seed/seeder';
import { generated } from '../../src/seed/sources';
import { names } from '../../src/naming/names';
import { benchConfig, deleteNamespace, queueDepth, randomNamespace, waitForDepth } from '../lib/broker';
import { owe } from '../lib/cleanup';
import { cpuSeconds, nowSeconds } from '../lib/stats';

export interface SeedParams {
  readonly n: number;
  readonly bytes: number;
  /** Unconfirmed publishes in flight, for both contenders (orbit seed's default). */
  readonly window: number;
  /** Every message is published this far ahead, so all go to one delay exchange with one routing key. */
  readonly delayMs: number;
  readonly queueType: QueueType;
  readonly amqpUrl: string;
}

export interface SeedTiming {
  /** First publish → last confirm. */
  readonly seconds: number;
  readonly clientCpuSeconds: number;
}

export interface SeedContender {
  readonly name: string;
  readonly summary: string;
  run(params: SeedParams, progress: (line: string) => void): Promise<SeedTiming>;
}

const LANE = 'bench';

/** The same N generated messages (ids gen-<n>, ~`bytes`-byte JSON bodies) for both, each `delayMs` ahead. */
async function* items(params: SeedParams): AsyncGenerator<SeedItem> {
  for await (const item of generated(params.n, params.bytes)) {
    const parsed = item.parsed as Exclude<SeedItem['parsed'], Error>;
    yield { ...item, parsed: { ...parsed, options: { ...parsed.options, delay: params.delayMs } } };
  }
}

/**
 * A fresh namespace with orbit's full topology declared (untimed), then `timed` runs, then
 * the hold queue must hold exactly N, and the namespace is deleted.
 */
async function stage(params: SeedParams, contender: string, timed: (ctx: Stage) => Promise<SeedTiming>): Promise<SeedTiming> {
  const namespace = randomNamespace(`bench-seed-${contender}`);
  const config = benchConfig(namespace, params.amqpUrl, { delay: { queueType: params.queueType }, lanes: [{ name: LANE, workAhead: false }] });
  const route = routeDelay(params.delayMs, LANE, config.delay, names(namespace));
  const cleanup = owe(() => deleteNamespace(params.amqpUrl, namespace));
  try {
    const timing = await timed({ config, route, namespace });
    // The hold queue is the delay level of the route's highest bit (queue and exchange share the name).
    await waitForDepth(params.amqpUrl, route.exchange, params.n, 30_000).catch(() => undefined);
    const held = await queueDepth(params.amqpUrl, route.exchange);
    if (held !== params.n) throw new Error(`${contender}: ${route.exchange} holds ${held} messages, expected ${params.n}`);
    return timing;
  } finally {
    await cleanup();
  }
}

interface Stage {
  readonly config: ReturnType<typeof benchConfig>;
  readonly route: ReturnType<typeof routeDelay>;
  readonly namespace: string;
}

/** orbit's seeder (what `orbit seed` runs), through the Scheduler: validation, routing, confirms. */
export const orbitSeed: SeedContender = {
  name: 'orbit-seed',
  summary: 'orbit seed(): generated lines → Scheduler.prepare/send, confirmed, bounded window',
  run: (params, progress) =>
    stage(params, 'orbit', async ({ config }) => {
      const scheduler = new Scheduler({ config });
      try {
        await scheduler.connect(); // connect and declare the topology: untimed
        progress(`seeding ${params.n} with orbit seed`);
        const cpu0 = cpuSeconds();
        const t0 = nowSeconds();
        const result = await seed(items(params), scheduler, { lane: LANE, window: params.window }, () => undefined);
        const seconds = nowSeconds() - t0;
        const cpu = cpuSeconds() - cpu0;
        if (result.failure !== undefined || result.confirmed !== params.n) throw new Error(`orbit seed confirmed ${result.confirmed} of ${params.n}: ${String(result.failure)}`);
        return { seconds, clientCpuSeconds: cpu };
      } finally {
        await scheduler.close();
      }
    }),
};

/**
 * The baseline: a plain amqplib loop on a ConfirmChannel, publishing the same messages (same
 * body bytes, id, orbit's headers) persistent and mandatory to the same delay exchange and
 * routing key, with at most `window` unconfirmed, waiting for `drain` when the socket is full.
 */
export const rawPublisher: SeedContender = {
  name: 'raw-amqplib',
  summary: 'amqplib ConfirmChannel loop: same bodies/headers, persistent, mandatory, same window, same exchange',
  run: (params, progress) =>
    stage(params, 'raw', async ({ config, route }) => {
      // Declare the topology the way orbit does (untimed), then publish on a plain connection.
      const declarer = new Scheduler({ config });
      await declarer.connect();
      await declarer.close();
      const conn = await amqplib.connect(params.amqpUrl);
      try {
        const ch = await conn.createConfirmChannel();
        let failure: Error | undefined;
        ch.on('return', () => (failure ??= new Error('a message was returned as unroutable')));
        progress(`seeding ${params.n} with raw amqplib`);
        const base = JSON.stringify({ n: 0, pad: '' }).length;
        let outstanding = 0;
        let confirmed = 0;
        let wake: (() => void) | undefined;
        const onConfirm = (err: unknown) => {
          if (err) failure ??= new Error(`nacked: ${String(err)}`);
          outstanding--;
          confirmed++;
          const w = wake;
          wake = undefined;
          w?.();
        };
        const cpu0 = cpuSeconds();
        const t0 = nowSeconds();
        for (let line = 1; line <= params.n; line++) {
          while (outstanding >= params.window) await new Promise<void>((r) => (wake = r));
          const padLength = Math.max(0, params.bytes - base - String(line).length);
          const body = Buffer.from(JSON.stringify({ n: line, pad: 'x'.repeat(padLength) }));
          const headers = { 'x-orbit-due': Date.now() + params.delayMs, 'x-orbit-runs': 0, 'x-orbit-attempt': 0, 'x-orbit-lane': LANE };
          outstanding++;
          const room = ch.publish(route.exchange, route.routingKey, body, { persistent: true, mandatory: true, messageId: `gen-${line}`, priority: 0, headers }, onConfirm);
          if (!room) await new Promise<void>((r) => ch.once('drain', r));
        }
        while (confirmed < params.n) await new Promise<void>((r) => (wake = r));
        const seconds = nowSeconds() - t0;
        const cpu = cpuSeconds() - cpu0;
        if (failure) throw failure;
        await ch.close();
        return { seconds, clientCpuSeconds: cpu };
      } finally {
        await conn.close().catch(() => undefined);
      }
    }),
};

export const BASELINE = 'raw-amqplib';
export const seedContenders: readonly SeedContender[] = [rawPublisher, orbitSeed];
