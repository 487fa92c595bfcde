import { Queue } from 'bullmq';
import type { QueueType } from '../../src/config/types';
import { Scheduler } from '../../src/publish/scheduler';
import { seed } from '../../src/seed/seeder';
import { generated } from '../../src/seed/sources';
import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { benchConfig, deleteNamespace, randomNamespace } from '../lib/broker';
import {
  BREAKDOWN_PARTS,
  brokerDisk,
  brokerIsLocal,
  classicQueueDiskUnder,
  ownQueueMemory,
  settledBrokerMemory,
  waitForMessagesUnder,
  type BreakdownPart,
  type BrokerDisk,
  type BrokerMemory,
} from '../lib/broker-stats';
import { bullConnection } from '../lib/bullmq';
import { owe } from '../lib/cleanup';
import { describeLoad, loadAverage } from '../lib/load';
import { deleteKeys, randomPrefix, redisAvailable, redisConnection, usedMemory } from '../lib/redis';
import { nowSeconds, round } from '../lib/stats';
import { formatFixed, formatInt, renderTable } from '../lib/table';

/** Resident messages: 200 k quick, 1 M full (the 10 M: `--n 10000000`, about 20 min of seeding here). */
export const DEFAULTS = { quick: 200_000, full: 1_000_000 } as const;
/** Body size of each message, as the user's (< 100 bytes). */
export const BODY_BYTES = 80;
/** Every message is due within this window, hours ahead: resident, nothing falls due during the run. */
export const SPREAD_MS = 6 * 3_600_000;
/** orbit's seeding window (its default) and BullMQ's jobs per addBulk. */
const WINDOW = 2000;
const BULL_BATCH = 1000;
/** Broker-side target for classic lazy delay levels (issue 5). */
export const TARGET_MB_PER_MILLION = 20;
const LANE = 'bench';
const MB = 1e6;

/** One reading of a store: what its server says it uses. */
export interface Reading {
  /** Messages loaded so far. */
  readonly loaded: number;
  /** RabbitMQ "Total memory used" (its memory alarm's figure) or Redis used_memory, bytes. */
  readonly ram: number;
  /** RabbitMQ only: erlang:memory(total). */
  readonly erlang?: number;
  /** RabbitMQ only: the memory_breakdown parts. */
  readonly parts?: Readonly<Record<BreakdownPart, number>>;
  /** RabbitMQ only: the node's data directory. */
  readonly disk?: number;
  /** RabbitMQ only: the namespace's own queue processes plus the binaries they reference (ownQueueMemory). */
  readonly ownProcs?: number;
  /** Classic only: the namespace's own queue directories. */
  readonly ownFiles?: number;
}

/** MB per million messages of each figure, from one reading to another. */
export interface Growth {
  readonly ram: number;
  readonly erlang?: number;
  readonly disk?: number;
  readonly ownProcs?: number;
  readonly ownFiles?: number;
  readonly parts?: Readonly<Record<BreakdownPart, number>>;
}

export interface StoreResult {
  readonly store: string;
  readonly n: number;
  readonly seedSeconds: number;
  readonly perSecond: number;
  /** Empty store → N: everything the load added (includes fixed costs such as queue processes), per million. */
  readonly total: Growth;
  /** N/2 → N: what each further million costs, the fixed costs already paid. */
  readonly marginal: Growth;
  readonly readings: readonly Reading[];
  /** Messages the broker held beyond N at the end (quorum's at-least-once dead-lettering). */
  readonly duplicates?: number;
}

/**
 * Resident memory: N messages of 80 bytes, due at random times over the next 6 hours, are
 * loaded into an empty store in two halves, and the store's own memory (and disk) is read
 * before, after the first half and at the end. The growth from empty to N, per million,
 * includes fixed costs (28 queue processes, buffers); the growth over the second half is the
 * marginal cost of more resident messages, which is what decides whether tens of millions fit.
 * orbit: its seeder (`orbit seed --generate N --bytes 80 --spread 6h`, in-process) into the
 * delay levels of a fresh namespace, once per `delay.queueType`; the broker's RAM from
 * `rabbitmq-diagnostics memory_breakdown` and the node's total, its disk from `du -sb` of the
 * node's data directory, and the namespace's own queue processes and directories. BullMQ: the
 * same messages as delayed jobs (`addBulk`: same ids, bodies and random delays) under a fresh
 * key prefix; Redis `used_memory`. Everything is deleted afterwards.
 */
export const memoryBenchmark: Benchmark = {
  name: 'memory',
  description: 'broker RAM and disk per million resident messages (80 bytes, due within 6 h), orbit vs BullMQ on Redis',
  async run(options: BenchOptions): Promise<BenchReport> {
    const n = options.n ?? (options.quick ? DEFAULTS.quick : DEFAULTS.full);
    const loadStart = loadAverage();
    const notes: string[] = [];
    const results: StoreResult[] = [];
    const local = await brokerIsLocal();
    if (!local) notes.push('RabbitMQ figures skipped: rabbitmqctl cannot reach the broker from this host');
    else for (const qt of options.queueTypes) results.push(await measureOrbit(options, qt, n));
    if (await redisAvailable(options.redisUrl)) results.push(await measureBullmq(options, n));
    else notes.push(`bullmq skipped: no Redis at ${options.redisUrl}`);
    const loadEnd = loadAverage();

    const bull = results.find((r) => r.store === 'bullmq');
    const targets: TargetResult[] = results
      .filter((r) => r.store === 'orbit-classic')
      .flatMap((r) => [
        {
          what: "broker RAM per million resident (classic lazy), the namespace's own queues, empty → N ≤",
          target: `${TARGET_MB_PER_MILLION} MB`,
          measured: `${formatFixed(r.total.ownProcs!, 1)} MB at N = ${formatInt(r.n)}; node total ${formatFixed(r.total.ram, 1)} MB`,
          met: r.total.ownProcs! <= TARGET_MB_PER_MILLION,
        },
        {
          what: "broker RAM per further million (classic lazy), the namespace's own queues, N/2 → N ≤",
          target: `${TARGET_MB_PER_MILLION} MB`,
          measured: `${formatFixed(r.marginal.ownProcs!, 1)} MB; node total ${formatFixed(r.marginal.ram, 1)} MB`,
          met: r.marginal.ownProcs! <= TARGET_MB_PER_MILLION,
        },
      ]);
    const mb = (v: number | undefined) => (v === undefined ? '—' : formatFixed(v, 1));
    const growthTable = (pick: (r: StoreResult) => Growth) =>
      renderTable(
        [
          { header: 'store' },
          { header: 'RAM', align: 'right' },
          { header: 'Erlang alloc', align: 'right' },
          { header: 'own queues RAM', align: 'right' },
          { header: 'disk', align: 'right' },
          { header: 'own queue files', align: 'right' },
          { header: 'RAM × bullmq', align: 'right' },
        ],
        results.map((r) => {
          const g = pick(r);
          const b = bull ? pick(bull).ram : undefined;
          return [r.store, mb(g.ram), mb(g.erlang), mb(g.ownProcs), mb(g.disk), mb(g.ownFiles), b && b > 0 ? formatFixed(g.ram / b, 3) : '—'];
        }),
      );

    const text = [
      `memory — ${this.description}`,
      `N = ${formatInt(n)} per store, loaded in two halves; ${BODY_BYTES}-byte bodies, random delay in [0, 6 h), orbit window ${WINDOW}, BullMQ addBulk of ${BULL_BATCH}`,
      describeLoad(loadStart, loadEnd),
      'RAM: the node total (RabbitMQ "Total memory used" = its RSS, what the memory alarm watches; Redis used_memory), median of 3 readings after a full GC of every broker process.',
      "own queues RAM / files: what the namespace's queues alone hold (their processes after a GC plus the binaries they reference; their classic queue directories): immune to other clients of a shared broker, but without shared tables (quorum: the WAL's in-memory tables, quorum_ets). disk: the node data directory (quorum: mostly the WAL, shared by all quorum queues).",
      ...notes,
      '',
      renderTable(
        [{ header: 'store' }, { header: 'N', align: 'right' }, { header: 'load s', align: 'right' }, { header: 'msgs/s', align: 'right' }, { header: 'extra copies', align: 'right' }],
        results.map((r) => [r.store, formatInt(r.n), formatFixed(r.seedSeconds, 1), formatInt(r.perSecond), r.duplicates ? `+${r.duplicates}` : '0']),
      ),
      '',
      `growth from empty to N = ${formatInt(n)}, MB per million resident:`,
      growthTable((r) => r.total),
      '',
      `marginal growth, N/2 → N, MB per further million:`,
      growthTable((r) => r.marginal),
    ];
    const withParts = results.filter((r) => r.total.parts);
    if (withParts.length > 0) {
      text.push(
        '',
        'RabbitMQ memory_breakdown growth, MB per million (empty → N | N/2 → N):',
        renderTable(
          [{ header: 'store' }, ...BREAKDOWN_PARTS.map((p) => ({ header: p, align: 'right' as const }))],
          withParts.map((r) => [r.store, ...BREAKDOWN_PARTS.map((p) => `${formatFixed(r.total.parts![p], 1)} | ${formatFixed(r.marginal.parts![p], 1)}`)]),
        ),
      );
    }
    text.push('', ...targets.map(targetLine));
    return {
      benchmark: this.name,
      text,
      data: { benchmark: this.name, params: { n, bodyBytes: BODY_BYTES, spreadMs: SPREAD_MS, window: WINDOW }, load: { start: loadStart, end: loadEnd }, notes, results, targets },
    };
  },
};

/** Growth from `a` to `b`, in MB per million messages loaded in between. */
function growth(a: Reading, b: Reading): Growth {
  const count = b.loaded - a.loaded;
  const perM = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined ? undefined : round((((y - x) / count) * 1e6) / MB, 2));
  return {
    ram: perM(a.ram, b.ram)!,
    erlang: perM(a.erlang, b.erlang),
    disk: perM(a.disk, b.disk),
    ownProcs: perM(a.ownProcs ?? 0, b.ownProcs),
    ownFiles: perM(a.ownFiles ?? 0, b.ownFiles),
    parts: a.parts && b.parts ? (Object.fromEntries(BREAKDOWN_PARTS.map((p) => [p, perM(a.parts![p], b.parts![p])])) as Record<BreakdownPart, number>) : undefined,
  };
}

async function settledBroker(): Promise<{ memory: BrokerMemory; disk: BrokerDisk }> {
  return { memory: await settledBrokerMemory(), disk: await brokerDisk() };
}

async function measureOrbit(options: BenchOptions, queueType: QueueType, n: number): Promise<StoreResult> {
  const store = `orbit-${queueType}`;
  const namespace = randomNamespace(`bench-mem-${queueType}`);
  const prefix = `${namespace}.`;
  const config = benchConfig(namespace, options.amqpUrl, { delay: { queueType }, lanes: [{ name: LANE, workAhead: false }] });
  const cleanup = owe(() => deleteNamespace(options.amqpUrl, namespace));
  let duplicates = 0;
  const read = async (loaded: number): Promise<Reading> => {
    if (loaded > 0) {
      const q = await waitForMessagesUnder(prefix, loaded, 30_000);
      // A few messages (delays of seconds) fall due during the run and move down the levels
      // to the lane queue, still counted. Quorum levels dead-letter at-least-once: under the
      // load of seeding a handful of those moves were seen to duplicate (e.g. 6 in 100,000).
      if (q.messages < loaded || q.messages > loaded + Math.max(10, loaded / 1000)) {
        throw new Error(`${store}: the broker holds ${q.messages} messages in ${namespace}, expected ${loaded}`);
      }
      if (q.messages !== loaded) duplicates = q.messages - loaded;
    }
    const { memory, disk } = await settledBroker();
    const own = loaded > 0 ? await ownQueueMemory(prefix) : undefined;
    const files = loaded > 0 && queueType === 'classic' ? await classicQueueDiskUnder(prefix) : undefined;
    return { loaded, ram: memory.totalBytes, erlang: memory.erlangBytes, parts: memory.parts, disk: disk.bytes, ownProcs: own ? own.processBytes + own.binaryBytes : undefined, ownFiles: files };
  };
  try {
    const readings: Reading[] = [await read(0)];
    const scheduler = new Scheduler({ config });
    let seconds = 0;
    try {
      await scheduler.connect();
      const half = Math.floor(n / 2);
      for (const [from, to] of [[0, half], [half, n]] as const) {
        options.progress(`memory ${store}: seeding messages ${formatInt(from + 1)}–${formatInt(to)}`);
        const started = nowSeconds();
        // generated(to, …, from): lines from + 1 … to, ids gen-<line>.
        const result = await seed(generated(to, BODY_BYTES, from), scheduler, { lane: LANE, spreadMs: SPREAD_MS, window: WINDOW }, () => undefined);
        seconds += nowSeconds() - started;
        if (result.failure !== undefined) throw result.failure instanceof Error ? result.failure : new Error(String(result.failure));
        if (result.confirmed !== to - from) throw new Error(`seeded ${result.confirmed} of ${to - from}`);
        readings.push(await read(to));
      }
    } finally {
      await scheduler.close();
    }
    const r: StoreResult = {
      store,
      n,
      seedSeconds: round(seconds, 2),
      perSecond: round(n / seconds, 0),
      total: growth(readings[0]!, readings[2]!),
      marginal: growth(readings[1]!, readings[2]!),
      readings,
      duplicates,
    };
    options.progress(
      `memory ${store}: RAM ${formatFixed(r.total.ram, 1)} MB/M (marginal ${formatFixed(r.marginal.ram, 1)}), own queues ${formatFixed(r.total.ownProcs!, 1)} (marginal ${formatFixed(r.marginal.ownProcs!, 1)}), disk ${formatFixed(r.total.disk!, 1)} MB/M`,
    );
    return r;
  } finally {
    options.progress(`memory ${store}: deleting ${namespace}`);
    await cleanup();
  }
}

export async function measureBullmq(options: BenchOptions, n: number): Promise<StoreResult> {
  const prefix = randomPrefix('bullmq-mem');
  const redis = redisConnection(options.redisUrl);
  const queue = new Queue(LANE, { connection: bullConnection(options.redisUrl), prefix });
  const close = owe(async () => {
    await queue.close().catch(() => undefined);
  });
  const cleanup = owe(async () => {
    await deleteKeys(redis, prefix);
  });
  const read = async (loaded: number): Promise<Reading> => {
    if (loaded > 0) {
      const delayed = await queue.getDelayedCount();
      if (delayed !== loaded) throw new Error(`bullmq: ${delayed} delayed jobs, expected ${loaded}`);
    }
    await sleep(500);
    return { loaded, ram: await usedMemory(redis) };
  };
  try {
    await queue.waitUntilReady();
    const readings: Reading[] = [await read(0)];
    let seconds = 0;
    const half = Math.floor(n / 2);
    for (const [from, to] of [[0, half], [half, n]] as const) {
      options.progress(`memory bullmq: adding delayed jobs ${formatInt(from + 1)}–${formatInt(to)}`);
      const started = nowSeconds();
      // The same messages orbit's generator makes: ids gen-<n>, bodies {n, pad} of ~80 bytes.
      let batch: Array<{ name: string; data: unknown; opts: { jobId: string; delay: number } }> = [];
      for await (const item of generated(to, BODY_BYTES, from)) {
        const parsed = item.parsed as { body: unknown; options: { id: string } };
        // At least 1 ms: BullMQ adds a job with delay 0 as waiting, not delayed, and at 1 M jobs
        // over 6 h one of them draws 0 about once in 20 runs (the count below then fails).
        batch.push({ name: 'job', data: parsed.body, opts: { jobId: parsed.options.id, delay: 1 + Math.floor(Math.random() * SPREAD_MS) } });
        if (batch.length === BULL_BATCH) {
          await queue.addBulk(batch);
          batch = [];
        }
      }
      if (batch.length > 0) await queue.addBulk(batch);
      seconds += nowSeconds() - started;
      readings.push(await read(to));
    }
    const r: StoreResult = {
      store: 'bullmq',
      n,
      seedSeconds: round(seconds, 2),
      perSecond: round(n / seconds, 0),
      total: growth(readings[0]!, readings[2]!),
      marginal: growth(readings[1]!, readings[2]!),
      readings,
    };
    options.progress(`memory bullmq: Redis used_memory ${formatFixed(r.total.ram, 1)} MB/M (marginal ${formatFixed(r.marginal.ram, 1)})`);
    return r;
  } finally {
    await close();
    options.progress(`memory bullmq: deleting ${prefix}:*`);
    await cleanup();
    redis.disconnect();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
