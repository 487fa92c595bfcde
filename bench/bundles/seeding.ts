import type { QueueType } from '../../src/config/types';
import { routeDelay } from '../../src/delay/routing';
import { Scheduler } from '../../src/publish/scheduler';
import { seed, type SeedItem } from '../../src/seed/seeder';
import { generated } from '../../src/seed/sources';
import { names } from '../../src/naming/names';
import { benchConfig, deleteNamespace, randomNamespace } from '../lib/broker';
import { owe } from '../lib/cleanup';
import { cpuSeconds, nowSeconds } from '../lib/stats';
import { rawPublisher } from '../seeding/contenders';
import { drainLogical } from './logical';

export interface SeedingJob {
  readonly kind: 'seeding';
  readonly label: string;
  readonly contender: 'raw-amqplib' | 'orbit-seed';
  /** orbit-seed: the lane's bundle.max (1 = bundles off). */
  readonly bundleMax: number;
  readonly lingerMs: number;
  readonly n: number;
  readonly bytes: number;
  readonly delayMs: number;
  readonly queueType: QueueType;
  readonly amqpUrl: string;
}

export interface SeedingResult {
  readonly seconds: number;
  readonly clientCpuSeconds: number;
  /** Unconfirmed publishes in flight (logical messages). */
  readonly window: number;
  /** What the hour-ahead level held afterwards. */
  readonly heldAmqp: number;
  readonly heldLogical: number;
}

const LANE = 'bench';
/** The raw loop's window: orbit seed's default for an unbundled lane. */
const RAW_WINDOW = 2000;

/** `orbit seed`'s default window (src/cli/seed.ts): 2,000, or 50 bundles of the largest bundled lane, at most 100,000. */
export function seedWindow(bundleMax: number): number {
  return Math.max(2000, Math.min(100_000, 50 * bundleMax));
}

export async function runSeeding(job: SeedingJob, progress: (line: string) => void): Promise<SeedingResult> {
  if (job.contender === 'raw-amqplib') {
    // bench/seeding's raw loop, unchanged; it checks that the hour-ahead level holds exactly N.
    const t = await rawPublisher.run({ n: job.n, bytes: job.bytes, window: RAW_WINDOW, delayMs: job.delayMs, queueType: job.queueType, amqpUrl: job.amqpUrl }, progress);
    return { ...t, window: RAW_WINDOW, heldAmqp: job.n, heldLogical: job.n };
  }
  return runOrbitSeed(job, progress);
}

/**
 * orbit's seeder (what `orbit seed --generate N --bytes 80 --delay 1h` runs, with its default
 * window) into a lane with `bundle.max`: the same generated messages as the raw loop, all one
 * hour ahead, so they share one route and fill whole bundles. Timed from the first publish to
 * the last confirm (the topology is declared first, untimed); then the hour-ahead level is
 * drained and decoded and must hold N logical messages with N distinct ids.
 */
async function runOrbitSeed(job: SeedingJob, progress: (line: string) => void): Promise<SeedingResult> {
  const namespace = randomNamespace(`bench-bseed-b${job.bundleMax}`);
  const config = benchConfig(namespace, job.amqpUrl, {
    delay: { queueType: job.queueType },
    lanes: [{ name: LANE, workAhead: false, bundle: { max: job.bundleMax, linger: `${job.lingerMs}ms` } }],
  });
  const holdQueue = routeDelay(job.delayMs, LANE, config.delay, names(namespace)).exchange;
  const cleanup = owe(() => deleteNamespace(job.amqpUrl, namespace));
  const window = seedWindow(job.bundleMax);
  async function* items(): AsyncGenerator<SeedItem> {
    for await (const item of generated(job.n, job.bytes)) {
      const parsed = item.parsed as Exclude<SeedItem['parsed'], Error>;
      yield { ...item, parsed: { ...parsed, options: { ...parsed.options, delay: job.delayMs } } };
    }
  }
  try {
    const scheduler = new Scheduler({ config });
    let seconds: number;
    let cpu: number;
    try {
      await scheduler.connect();
      progress(`seeding ${job.n.toLocaleString('en-US')} with orbit seed, bundle.max ${job.bundleMax}, window ${window}`);
      const cpu0 = cpuSeconds();
      const t0 = nowSeconds();
      const result = await seed(items(), scheduler, { lane: LANE, window }, () => undefined);
      seconds = nowSeconds() - t0;
      cpu = cpuSeconds() - cpu0;
      if (result.failure !== undefined || result.confirmed !== job.n) throw new Error(`orbit seed confirmed ${result.confirmed} of ${job.n}: ${String(result.failure)}`);
    } finally {
      await scheduler.close();
    }
    const held = await drainLogical(job.amqpUrl, [holdQueue], { trackIds: job.n <= 2_000_000, expectRuns: 0 });
    const problems: string[] = [];
    if (held.logical !== job.n) problems.push(`${holdQueue} holds ${held.logical} logical messages, expected ${job.n}`);
    if (held.distinctIds !== undefined && held.distinctIds !== job.n) problems.push(`${held.distinctIds} distinct ids, expected ${job.n}`);
    if (held.wrongRuns > 0) problems.push(`${held.wrongRuns} with runs ≠ 0`);
    if (problems.length > 0) throw new Error(`orbit seed bundle.max ${job.bundleMax} is not valid: ${problems.join('; ')}`);
    return { seconds, clientCpuSeconds: cpu, window, heldAmqp: held.amqp, heldLogical: held.logical };
  } finally {
    await cleanup();
  }
}
