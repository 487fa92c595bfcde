import type { QueueType } from '../../src/config/types';
import { Scheduler } from '../../src/publish/scheduler';
import { seed, type SeedItem } from '../../src/seed/seeder';
import { generated } from '../../src/seed/sources';
import { buildTopology } from '../../src/topology/build';
import { benchConfig, deleteNamespace, randomNamespace } from '../lib/broker';
import {
  BREAKDOWN_PARTS,
  brokerDisk,
  classicQueueDiskUnder,
  ownQueueMemory,
  settledBrokerMemory,
  queuesUnder,
  type BreakdownPart,
} from '../lib/broker-stats';
import { owe } from '../lib/cleanup';
import { nowSeconds, round } from '../lib/stats';
import { drainLogical } from './logical';
import { seedWindow } from './seeding';

export interface MemoryJob {
  readonly kind: 'memory';
  readonly label: string;
  readonly bundleMax: number;
  readonly lingerMs: number;
  /** Logical messages made resident. */
  readonly n: number;
  readonly bytes: number;
  /** Every message is due at least this far ahead (nothing falls due during the run). */
  readonly offsetMs: number;
  /** …plus a random delay in [0, spreadMs). */
  readonly spreadMs: number;
  readonly queueType: QueueType;
  readonly amqpUrl: string;
}

/** One reading: after the topology is declared (loaded 0), after N/2, after N. */
export interface MemoryReading {
  readonly loaded: number;
  /** AMQP messages the namespace's queues held (bundles). */
  readonly amqp: number;
  /** The node's "Total memory used" (its RSS), bytes. */
  readonly ram: number;
  readonly erlang: number;
  readonly parts: Readonly<Record<BreakdownPart, number>>;
  /** The node's data directory, bytes. */
  readonly disk: number;
  /** The namespace's own queue processes plus the binaries they reference, bytes. */
  readonly ownProcs: number;
  /** …of which the off-heap binaries those processes reference (each counted once). */
  readonly ownBinaries: number;
  /** Classic: the namespace's own queue directories, bytes. */
  readonly ownFiles: number | undefined;
}

/** MB per million logical messages from one reading to another. */
export interface LogicalGrowth {
  readonly ram: number;
  readonly erlang: number;
  readonly ownProcs: number;
  readonly ownBinaries: number;
  readonly msgIndex: number;
  readonly disk: number;
  readonly ownFiles: number | undefined;
  readonly parts: Readonly<Record<BreakdownPart, number>>;
}

export interface MemoryResult {
  readonly seedSeconds: number;
  readonly window: number;
  readonly readings: readonly MemoryReading[];
  /** Declared-empty → N. */
  readonly total: LogicalGrowth;
  /** N/2 → N. */
  readonly marginal: LogicalGrowth;
  /** Drained and decoded at the end. */
  readonly heldAmqp: number;
  readonly heldLogical: number;
  /** Bytes of AMQP bodies held (bundles: 5 + per message 23 + id + body). */
  readonly bodyBytes: number;
}

const LANE = 'bench';
const MB = 1e6;

/**
 * Resident memory of a bundled lane: N logical messages of `bytes`-byte bodies, seeded with
 * orbit's seeder (its default window for the lane) into a lane with `bundle.max`, each due at
 * `offset` + a random delay in [0, spread), generated in descending delay order as
 * `orbit seed --generate --spread` does, so consecutive messages share a due second and fill
 * bundles. The broker is read (as bench/memory does: after 2 s of quiet, three readings
 * after a full GC, their median; `du` of the data directory; the namespace's own queues)
 * once the topology is declared, after N/2 and after N. At the end every queue of the
 * namespace is drained and decoded: it must hold exactly N logical messages.
 */
export async function runMemory(job: MemoryJob, progress: (line: string) => void): Promise<MemoryResult> {
  const namespace = randomNamespace(`bench-bmem-b${job.bundleMax}`);
  const prefix = `${namespace}.`;
  const config = benchConfig(namespace, job.amqpUrl, {
    delay: { queueType: job.queueType },
    lanes: [{ name: LANE, workAhead: false, bundle: { max: job.bundleMax, linger: `${job.lingerMs}ms` } }],
  });
  const queues = buildTopology(config).queues.map((q) => q.name);
  const cleanup = owe(() => deleteNamespace(job.amqpUrl, namespace));
  const window = seedWindow(job.bundleMax);
  const read = async (loaded: number): Promise<MemoryReading> => {
    // The broker reports queue lengths lazily: wait until the count stops moving.
    let amqp = -1;
    for (let i = 0; i < 30; i++) {
      const now = (await queuesUnder(prefix)).messages;
      if (now === amqp) break;
      amqp = now;
      await sleep(500);
    }
    const memory = await settledBrokerMemory();
    const own = await ownQueueMemory(prefix);
    const ownFiles = job.queueType === 'classic' ? await classicQueueDiskUnder(prefix) : undefined;
    const disk = (await brokerDisk()).bytes;
    return { loaded, amqp, ram: memory.totalBytes, erlang: memory.erlangBytes, parts: memory.parts, disk, ownProcs: own.processBytes + own.binaryBytes, ownBinaries: own.binaryBytes, ownFiles };
  };
  try {
    const scheduler = new Scheduler({ config });
    const readings: MemoryReading[] = [];
    let seconds = 0;
    try {
      await scheduler.connect(); // declares the topology: the first reading includes the empty queues
      readings.push(await read(0));
      const half = Math.floor(job.n / 2);
      for (const [from, to] of [[0, half], [half, job.n]] as const) {
        progress(`seeding logical messages ${(from + 1).toLocaleString('en-US')}–${to.toLocaleString('en-US')} (bundle.max ${job.bundleMax}, window ${window})`);
        const started = nowSeconds();
        const result = await seed(items(job, from, to), scheduler, { lane: LANE, window }, () => undefined);
        seconds += nowSeconds() - started;
        if (result.failure !== undefined) throw result.failure instanceof Error ? result.failure : new Error(String(result.failure));
        if (result.confirmed !== to - from) throw new Error(`seeded ${result.confirmed} of ${to - from}`);
        readings.push(await read(to));
        progress(`${to.toLocaleString('en-US')} logical resident in ${readings.at(-1)!.amqp.toLocaleString('en-US')} AMQP messages`);
      }
    } finally {
      await scheduler.close();
    }
    progress('draining and decoding to count the logical messages');
    const held = await drainLogical(job.amqpUrl, queues, { expectRuns: 0 });
    if (held.logical !== job.n) throw new Error(`the namespace held ${held.logical} logical messages (${held.amqp} AMQP), expected ${job.n}`);
    return {
      seedSeconds: seconds,
      window,
      readings,
      total: growth(readings[0]!, readings[2]!),
      marginal: growth(readings[1]!, readings[2]!),
      heldAmqp: held.amqp,
      heldLogical: held.logical,
      bodyBytes: held.bodyBytes,
    };
  } finally {
    await cleanup();
  }
}

/** Lines from+1 … to of `orbit seed --generate N --bytes B --spread S`, each `offset` later. */
async function* items(job: MemoryJob, from: number, to: number): AsyncGenerator<SeedItem> {
  for await (const item of generated(to, job.bytes, from, job.spreadMs)) {
    const parsed = item.parsed as Exclude<SeedItem['parsed'], Error>;
    const delay = Number(parsed.options.delay ?? 0) + job.offsetMs;
    yield { ...item, parsed: { ...parsed, options: { ...parsed.options, delay } } };
  }
}

function growth(a: MemoryReading, b: MemoryReading): LogicalGrowth {
  const count = b.loaded - a.loaded;
  const perM = (x: number, y: number) => round((((y - x) / count) * 1e6) / MB, 3);
  return {
    ram: perM(a.ram, b.ram),
    erlang: perM(a.erlang, b.erlang),
    ownProcs: perM(a.ownProcs, b.ownProcs),
    ownBinaries: perM(a.ownBinaries, b.ownBinaries),
    msgIndex: perM(a.parts.msg_index, b.parts.msg_index),
    disk: perM(a.disk, b.disk),
    ownFiles: a.ownFiles === undefined || b.ownFiles === undefined ? undefined : perM(a.ownFiles, b.ownFiles),
    parts: Object.fromEntries(BREAKDOWN_PARTS.map((p) => [p, perM(a.parts[p], b.parts[p])])) as Record<BreakdownPart, number>,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
