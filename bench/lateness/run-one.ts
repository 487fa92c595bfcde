import type { QueueType } from '../../src/config/types';
import { Daemon } from '../../src/daemon';
import { parseDuration } from '../../src/config/durations';
import { Scheduler } from '../../src/publish/scheduler';
import { seed, type SeedItem } from '../../src/seed/seeder';
import { benchConfig, deleteNamespace, randomNamespace } from '../lib/broker';
import { owe } from '../lib/cleanup';
import { serveJob } from '../lib/isolate';
import { nowSeconds, percentile } from '../lib/stats';

export interface LatenessJob {
  readonly label: string;
  readonly queueType: QueueType;
  /** `delay.unit`, e.g. `1s` or `1m`. */
  readonly unit: string;
  /** Messages published, and so falling due, per second. */
  readonly rate: number;
  /** For how long they are published (and fall due), seconds. */
  readonly seconds: number;
  /** Each message's delay is uniform in [minDelay, maxDelay), ms. */
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly concurrency: number;
  readonly amqpUrl: string;
  /** A bundled lane (bench/bundles): messages sharing a route wait up to `lingerMs` for company. */
  readonly bundle?: { readonly max: number; readonly lingerMs: number };
}

export interface LatenessResult {
  readonly n: number;
  readonly handled: number;
  /** Seconds the paced publishing took (≈ `seconds` when the broker keeps up). */
  readonly publishSeconds: number;
  readonly early: number;
  /** Bundled lane: deliveries the daemon decoded (logical messages / deliveries = mean bundle size); 0 otherwise. */
  readonly deliveries: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly minMs: number;
  readonly meanMs: number;
  /** Runs judged against a bound: those not taken early whose message carried one (all, from this orbit). */
  readonly judged: number;
  /** Runs that started past the bound their publisher wrote on them (`x-orbit-allowed`). */
  readonly pastBound: number;
  /** The most any judged run started past its bound, ms (≤ 0: every run within it; 0 when none was judged). */
  readonly worstOverBoundMs: number;
  /** Median lateness of each tenth of the run, in handling order: a load the broker does not sustain shows as a rising trend. */
  readonly p50ByTenthMs: readonly number[];
}

const LANE = 'bench';
/**
 * RabbitMQ (3.10.8) refuses an `x-message-ttl` above 315,360,000,000 ms (10 years), and the top
 * delay level's TTL is 2^(levels − 1) × unit: with a 1 min unit, 28 levels are refused. The
 * bench uses as many levels as the broker takes, up to orbit's default of 28.
 */
const MAX_TTL_MS = 315_360_000_000;
export function levelsFor(unitMs: number): number {
  return Math.min(28, Math.floor(Math.log2(MAX_TTL_MS / unitMs)) + 1);
}

/**
 * One lateness run: a daemon (handler: done at once, work-ahead off) consumes a lane while, in
 * the same process, orbit's seeder publishes `rate` messages a second for `seconds` seconds
 * (paced by its --rate token bucket), each with a delay uniform in [minDelay, maxDelay). So
 * every delay level gets a steady stream, as under a real recurring workload, and messages
 * fall due at about `rate` a second (ramping up and down over the delay range at the ends).
 * Lateness is the daemon's own figure (handler start − due: the `handlerStarted` observer,
 * which feeds `orbit_lateness_seconds`). With `bundle`, the publisher packs messages that
 * share a route (same delay in units) for up to `linger`, so a message is late by up to
 * `linger` on top of the unit rounding. Each run is also judged against the bound it was
 * published with (`orbit_lateness_bound_ratio`'s figure): the runs past it and the worst overrun.
 */
export async function runLateness(job: LatenessJob, progress: (line: string) => void): Promise<LatenessResult> {
  const unitMs = parseDuration(job.unit, 'unit');
  const n = Math.round(job.rate * job.seconds);
  const bundle = job.bundle;
  const lingerMs = bundle?.lingerMs ?? 0;
  const namespace = randomNamespace(bundle ? `bench-blate-b${bundle.max}` : `bench-late-${job.queueType}`);
  const config = benchConfig(namespace, job.amqpUrl, {
    delay: { unit: job.unit, queueType: job.queueType, levels: levelsFor(unitMs) },
    lanes: [{ name: LANE, concurrency: job.concurrency, workAhead: false, ...(bundle ? { bundle: { max: bundle.max, linger: `${bundle.lingerMs}ms` } } : {}) }],
    shutdown: { timeout: '30s' },
  });
  const cleanup = owe(() => deleteNamespace(job.amqpUrl, namespace));
  const lateness = new Float64Array(n);
  let handled = 0;
  let early = 0;
  let deliveries = 0;
  let judged = 0;
  let pastBound = 0;
  let worstOverBoundMs = -Infinity;
  let allHandled: () => void = () => undefined;
  const done = new Promise<void>((r) => (allHandled = r));
  const daemon = new Daemon({
    config,
    handlers: { [LANE]: async () => undefined },
    observer: {
      deliveryDecoded: () => void deliveries++,
      handlerStarted: (_lane, latenessMs, wasEarly, allowedMs) => {
        if (handled < n) lateness[handled] = latenessMs;
        if (wasEarly) early++;
        else if (allowedMs !== undefined) {
          judged++;
          worstOverBoundMs = Math.max(worstOverBoundMs, latenessMs - allowedMs);
          if (latenessMs > allowedMs) pastBound++;
        }
        if (++handled === n) allHandled();
      },
    },
  });
  const stopDaemon = owe(() => daemon.stop());
  try {
    await daemon.start();
    const scheduler = new Scheduler({ config });
    let publishSeconds: number;
    try {
      await scheduler.connect();
      progress(
        `publishing ${job.rate}/s for ${job.seconds} s, delays ${job.minDelayMs / 1000}–${job.maxDelayMs / 1000} s` +
          (bundle ? `, bundle.max ${bundle.max}, linger ${bundle.lingerMs} ms` : ''),
      );
      const span = job.maxDelayMs - job.minDelayMs;
      async function* items(): AsyncGenerator<SeedItem> {
        for (let i = 0; i < n; i++) {
          const delay = job.minDelayMs + Math.floor(Math.random() * span);
          yield { line: i + 1, bytes: 0, parsed: { lane: LANE, body: { i, pad: 'x'.repeat(60) }, options: { id: `late-${i}`, delay } } };
        }
      }
      const started = nowSeconds();
      // The window must hold what waits for company: rate × linger, with room to spare.
      const window = Math.max(2000, Math.ceil((job.rate * lingerMs) / 1000) * 4);
      const r = await seed(items(), scheduler, { lane: LANE, rate: job.rate, window }, () => undefined);
      if (r.failure !== undefined || r.confirmed !== n) throw new Error(`published ${r.confirmed} of ${n}: ${String(r.failure)}`);
      publishSeconds = nowSeconds() - started;
    } finally {
      await scheduler.close();
    }
    // The last message is due maxDelay after it was published; give it three units, its linger and 30 s more.
    const deadline = Date.now() + job.maxDelayMs + 3 * unitMs + lingerMs + 30_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
    clearTimeout(timer);
    await stopDaemon();
    const got = Math.min(handled, n);
    if (got === 0) throw new Error('no message was handled');
    const sorted = Float64Array.from(lateness.subarray(0, got)).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      n,
      handled,
      publishSeconds,
      early,
      deliveries,
      judged,
      pastBound,
      worstOverBoundMs: judged > 0 ? worstOverBoundMs : 0,
      p50Ms: percentile(sorted, 50),
      p90Ms: percentile(sorted, 90),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted[got - 1]!,
      minMs: sorted[0]!,
      meanMs: sum / got,
      p50ByTenthMs: Array.from({ length: 10 }, (_, t) => {
        const part = Float64Array.from(lateness.subarray(Math.floor((t * got) / 10), Math.floor(((t + 1) * got) / 10))).sort();
        return part.length > 0 ? percentile(part, 50) : NaN;
      }),
    };
  } finally {
    await stopDaemon();
    await cleanup();
  }
}

if (require.main === module) {
  serveJob<LatenessJob, LatenessResult>((job) => runLateness(job, (line) => process.stderr.write(`[bench] ${job.label}: ${line}\n`)));
}
