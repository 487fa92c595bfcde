import amqplib from 'amqplib';
import type { QueueType } from '../../src/config/types';
import { Daemon } from '../../src/daemon';
import { Scheduler } from '../../src/publish/scheduler';
import { seed, type SeedItem } from '../../src/seed/seeder';
import { names } from '../../src/naming/names';
import { reschedule, type Handler } from '../../src/worker/handler-types';
import { installAmqpCounters, snapshotCounts, type AmqpSnapshot } from '../lib/amqp-counters';
import { deleteNamespace } from '../lib/broker';
import { owe } from '../lib/cleanup';
import { paddedBody } from '../lib/floor';
import { variantConfig, type VariantConfig } from '../lib/orbit-settings';
import { brokerWrittenBytes } from '../lib/broker-stats';
import { atMost, failOnStall } from '../lib/stall';
import { cpuSeconds, nowSeconds } from '../lib/stats';
import { firstDelayOf, intervalOf, steadyId, WORKLOADS, type SteadyKind } from './workload';

export const LANE = 'steady';

/** One run of orbit's steady state (plain data: it crosses to a child process). */
export interface SteadyJob {
  readonly kind: 'steady';
  readonly label: string;
  /** Chosen by the parent, which deletes it again if the run fails (a stuck daemon may re-declare queues). */
  readonly namespace: string;
  readonly variant: SteadyKind;
  readonly queueType: QueueType;
  /** `delay.tolerance` as given to `--tolerance` (`0`, `0.02`, `2%`). */
  readonly tolerance: string;
  /** Cancels of ids the loop never uses, written before seeding: the daemon holds them all. */
  readonly tombstones: number;
  /** `--orbit-set` pairs, merged over the variant's config. */
  readonly extra: Readonly<Record<string, string>>;
  readonly amqpUrl: string;
  /** Ids seeded (logical messages, each rescheduled for ever). */
  readonly n: number;
  /** The lane's concurrency (handler slots, logical messages). */
  readonly concurrency: number;
  readonly bodyBytes: number;
  /** At least this warm-up, then until the loop is in equilibrium (see inEquilibrium), at most maxWarmupMs. */
  readonly warmupMs: number;
  readonly maxWarmupMs: number;
  readonly windowMs: number;
  /** Set when the run is a child the parent cleans up after (see withNamespaceCleanup): on failure the child leaves the namespace alone. */
  readonly parentCleansUp?: boolean;
}

export interface SteadyResult {
  /** Logical handler runs settled (replacement confirmed) per second over the window. */
  readonly runsPerSec: number;
  /** The same for the first and second half of the window. */
  readonly halves: readonly [number, number];
  readonly windowSeconds: number;
  /** AMQP deliveries from the lane queue, and from the rungs `delay.hold` holds, per second (bundles count once). */
  readonly deliveriesPerSec: number;
  /** AMQP messages this process published per second (replacements, bundles count once). */
  readonly publishesPerSec: number;
  /** Bytes per second the broker wrote to storage over the window (`brokerWrittenBytes`); undefined when it is not on this host. */
  readonly brokerWritesPerSec?: number;
  /** Logical messages per lane delivery (bundle size in) and per AMQP message published (bundle size out). */
  readonly logicalPerDelivery: number;
  readonly logicalPerPublish: number;
  /** TTL expiries (dead-letterings) per lane delivery, from the broker's `x-death` counts: delay hops. */
  readonly delayHopsPerDelivery: number;
  /**
   * Queue passes per second: each delivery passed its delay hops, then the queue it came from. The
   * broker's own per-message work, in AMQP messages (a bundle counts once).
   */
  readonly queuePassesPerSec: number;
  /** Client CPU (the daemon's process) per logical run over the window, µs. */
  readonly cpuMicrosPerRun: number;
  /** Ready AMQP messages in the lane queue, sampled once a second during the window. */
  readonly laneDepthMin: number;
  readonly laneDepthMax: number;
  /** Warm-up actually used, and whether the loop was in equilibrium at its end and over the window. */
  readonly warmupSeconds: number;
  readonly equilibrium: boolean;
  /** Logical messages taken from the lane from the daemon's start to the window's start, ÷ N. */
  readonly turnover: number;
  /** Seeding: seconds, and logical messages per AMQP message seeded. */
  readonly seedSeconds: number;
  readonly seedLogicalPerAmqp: number;
  /** `set`: delay.tolerance passed to orbit; `absent`: this orbit has no such key (tolerance 0 ran without it). */
  readonly toleranceKey: 'set' | 'absent';
  readonly prefetch: number;
}

/**
 * The loop is in equilibrium between two marks when the lane gives out what the daemon puts in:
 * AMQP deliveries and AMQP publishes agree within 20 %, and so do the bundle sizes coming in
 * (logical per delivery) and going out (logical per publish). The warm-up also waits for the lane
 * to turn over (as many logical messages taken as were seeded). Until then the lane still holds
 * messages shaped by the seeding, not by the loop (under overload the lane is a long FIFO): their
 * bundle sizes and delay hops are the seeding's, and a rate counted then is not the loop's own.
 */
function inEquilibrium(a: { decoded: number; settled: number; lane: AmqpSnapshot; all: AmqpSnapshot }, b: typeof a): boolean {
  const deliveries = b.lane.deliveries - a.lane.deliveries;
  const published = b.all.published - a.all.published;
  if (deliveries === 0 || published === 0) return false;
  const near = (x: number, y: number) => x <= 1.2 * y && y <= 1.2 * x;
  return near(deliveries, published) && near((b.decoded - a.decoded) / deliveries, (b.settled - a.settled) / published);
}

/**
 * Publishes in flight while seeding: an unbundled lane 1,000; a bundled one twice its
 * concurrency, about what the daemon itself has in flight, so seeded bundles are shaped
 * roughly like the loop's own (far more in flight would fill bundles the loop never fills).
 */
function seedWindow(bundleMax: number, concurrency: number): number {
  return bundleMax > 1 ? 2 * concurrency : 1000;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The orbit config of a steady run: its workload's lane and unit, then `--orbit-set`, then the tolerance. */
export function steadyConfig(job: Pick<SteadyJob, 'namespace' | 'amqpUrl' | 'variant' | 'queueType' | 'concurrency' | 'extra' | 'tolerance'>): VariantConfig {
  const workload = WORKLOADS[job.variant];
  const lane: Record<string, unknown> = { name: LANE, concurrency: job.concurrency, workAhead: false };
  if (workload.bundleMax > 1) lane.bundle = { max: workload.bundleMax, linger: `${workload.lingerMs}ms` };
  return variantConfig(
    job.namespace,
    job.amqpUrl,
    { delay: { queueType: job.queueType, unit: `${workload.unitMs}ms` }, lanes: [lane], shutdown: { timeout: '10s' } },
    job.extra,
    job.tolerance,
  );
}

/**
 * Seeds N ids (each first due within its own interval), then runs an in-process Daemon whose
 * handler returns `reschedule({ delay: interval(id) })` for ever (work-ahead off). After the
 * warm-up (see inEquilibrium), counts
 * over the window: logical runs settled (the observer), lane deliveries and their `x-death`
 * hops and AMQP publishes (lib/amqp-counters.ts), client CPU, and the lane's depth each second
 * (a lane that never empties means demand exceeded capacity: the rate is orbit's capacity).
 */
export async function runSteady(job: SteadyJob, progress: (line: string) => void): Promise<SteadyResult> {
  installAmqpCounters();
  const workload = WORKLOADS[job.variant];
  const namespace = job.namespace;
  const { config, tolerance: toleranceKey } = steadyConfig(job);
  const named = names(namespace);
  const laneQueue = named.lane(LANE);
  // Where the daemon's runs come from: its lane, and the rungs it holds (`delay.hold`), whose
  // deliveries never passed a dead-lettering (one queue pass each, no hop).
  const runSource = (queue: string): boolean => queue === laneQueue || named.rungTtlOf(queue) !== undefined;
  // Everything under the namespace, also queues declared on demand (rabbitmqctl lists them).
  const cleanup = owe(() => deleteNamespace(job.amqpUrl, namespace, { queues: [laneQueue] }));
  let daemon: Daemon | undefined;
  let monitor: amqplib.ChannelModel | undefined;
  // Bounded: a daemon that cannot settle must not keep the cleanup waiting.
  const stopDaemon = owe(async () => {
    if (daemon) await atMost(daemon.stop(), 30_000);
    await monitor?.close().catch(() => undefined);
  });
  let result: SteadyResult;
  try {
    // 1. Seed: N ids, each first due within its own interval (see firstDelayOf).
    progress(`seeding ${job.n.toLocaleString('en-US')} ids (${workload.describe})`);
    const s0 = nowSeconds();
    const seedPublished0 = snapshotCounts().published;
    const scheduler = new Scheduler({ config });
    try {
      if (job.tombstones > 0) {
        progress(`cancelling ${job.tombstones.toLocaleString('en-US')} ids the loop never uses`);
        await scheduler.cancel(Array.from({ length: job.tombstones }, (_, i) => `ghost-${i}`));
      }
      // The bulk path `orbit seed` uses (`sendWith`): a bundled lane's messages wait up to the
      // linger for company, as the daemon's own reschedules do; an awaited publish would go
      // after one timer turn, in bundles of one or two the loop never makes.
      let seeded = 0;
      const items = function* (): Generator<SeedItem> {
        for (let i = 0; i < job.n; i++) {
          const id = steadyId(i);
          yield { line: i + 1, bytes: 0, parsed: { lane: LANE, body: paddedBody(i, job.bodyBytes), options: { id, delay: firstDelayOf(job.variant, id) } } };
        }
      };
      const run = seed(items(), scheduler, { lane: LANE, strict: true, window: seedWindow(workload.bundleMax, job.concurrency) }, (_line, err) => {
        throw err;
      }, (p) => {
        seeded = p.confirmed;
      });
      const result = await failOnStall(run, () => seeded, 60_000, 'seeding (confirms)', 180_000);
      if (result.failure !== undefined) throw result.failure instanceof Error ? result.failure : new Error(String(result.failure));
      if (result.confirmed !== job.n) throw new Error(`seeded ${result.confirmed} of ${job.n}`);
    } finally {
      await atMost(scheduler.close(), 10_000);
    }
    const seedSeconds = nowSeconds() - s0;
    const seedAmqp = snapshotCounts().published - seedPublished0;
    progress(`seeded in ${seedSeconds.toFixed(1)} s, ${(job.n / Math.max(1, seedAmqp)).toFixed(1)} logical per AMQP message`);

    // 2. The daemon: every id comes back after its own interval, for ever.
    let settled = 0;
    let decoded = 0;
    let failure: Error | undefined;
    const kind = job.variant;
    const handler: Handler = (msg) => reschedule({ delay: intervalOf(kind, msg.id) });
    daemon = new Daemon({
      config,
      handlers: { [LANE]: handler },
      observer: {
        deliveryDecoded: (_lane, messages) => {
          decoded += messages;
        },
        messageSettled: (_lane, how) => {
          if (how === 'rescheduled') settled++;
          else failure ??= new Error(`a message was settled as ${how}, expected rescheduled`);
        },
      },
    });
    monitor = await amqplib.connect(job.amqpUrl, { clientProperties: { connection_name: `bench:${namespace}:monitor` } });
    const monitorCh = await monitor.createChannel();
    await daemon.start();

    interface Mark {
      readonly t: number;
      readonly settled: number;
      /** Logical messages unpacked from lane deliveries. */
      readonly decoded: number;
      readonly cpu: number;
      readonly lane: AmqpSnapshot;
      readonly all: AmqpSnapshot;
    }
    // An unbundled delivery is one logical message (the daemon reports decoding for bundled lanes only).
    const bundled = workload.bundleMax > 1;
    const mark = (): Mark => {
      const lane = snapshotCounts(runSource);
      return { t: nowSeconds(), settled, decoded: bundled ? decoded : lane.deliveries, cpu: cpuSeconds(), lane, all: snapshotCounts() };
    };
    let stalledTicks = 0;
    const tickCheck = (before: number) => {
      if (failure) throw failure;
      stalledTicks = settled === before ? stalledTicks + 1 : 0;
      if (stalledTicks >= 10) throw new Error(`no handler run settled for 10 s (${settled} so far)`);
    };

    // 3. Warm-up: at least warmupMs, then until the loop is in equilibrium (up to maxWarmupMs).
    progress(`running: warm-up ${job.warmupMs / 1000}–${job.maxWarmupMs / 1000} s (until AMQP in ≈ out), then ${job.windowMs / 1000} s counted`);
    const w0 = mark();
    const recent: Mark[] = [w0];
    let equilibrium = false;
    for (let tick = 1; ; tick++) {
      const before = settled;
      await sleep(Math.max(0, (w0.t + tick - nowSeconds()) * 1000));
      tickCheck(before);
      recent.push(mark());
      if (recent.length > 4) recent.shift();
      if (tick * 1000 < job.warmupMs) continue;
      // Turned over: as many logical messages taken from the lane as were seeded, so what the lane
      // gives out now was mostly put there by the loop; and AMQP in ≈ out over the last 3 s.
      const latest = recent[recent.length - 1]!;
      equilibrium = latest.decoded - w0.decoded >= job.n && inEquilibrium(recent[0]!, latest);
      if (equilibrium || tick * 1000 >= job.maxWarmupMs) break;
    }
    const warmupSeconds = nowSeconds() - w0.t;
    progress(equilibrium ? `in equilibrium after ${warmupSeconds.toFixed(0)} s` : `not in equilibrium after ${warmupSeconds.toFixed(0)} s of warm-up (lane turned over ${((mark().decoded - w0.decoded) / job.n).toFixed(2)} ×): counting anyway`);

    // 4. The window.
    const written0 = await brokerWrittenBytes();
    const start = mark();
    const depths: number[] = [];
    const ticks = Math.max(2, Math.round(job.windowMs / 1000));
    let middle = start;
    let end = start;
    for (let tick = 1; tick <= ticks; tick++) {
      const before = settled;
      await sleep(Math.max(0, (start.t + tick - nowSeconds()) * 1000));
      if (tick === ticks >> 1) middle = mark();
      if (tick === ticks) end = mark();
      tickCheck(before);
      // The lane's ready AMQP messages: never 0 means the lane always had a backlog (capacity-bound).
      if (tick < ticks) depths.push((await monitorCh.checkQueue(laneQueue)).messageCount);
    }
    const written1 = written0 === undefined ? undefined : await brokerWrittenBytes();
    const seconds = end.t - start.t;
    const runs = end.settled - start.settled;
    if (runs === 0) throw new Error('no handler run settled during the window');
    const deliveries = end.lane.deliveries - start.lane.deliveries;
    const published = end.all.published - start.all.published;
    const hops = end.lane.deadLetterings - start.lane.deadLetterings;
    result = {
      runsPerSec: runs / seconds,
      halves: [(middle.settled - start.settled) / (middle.t - start.t), (end.settled - middle.settled) / (end.t - middle.t)],
      windowSeconds: seconds,
      deliveriesPerSec: deliveries / seconds,
      publishesPerSec: published / seconds,
      logicalPerDelivery: deliveries > 0 ? (end.decoded - start.decoded) / deliveries : 0,
      logicalPerPublish: published > 0 ? runs / published : 0,
      delayHopsPerDelivery: deliveries > 0 ? hops / deliveries : 0,
      queuePassesPerSec: (deliveries + hops) / seconds,
      cpuMicrosPerRun: ((end.cpu - start.cpu) * 1e6) / runs,
      brokerWritesPerSec: written0 === undefined || written1 === undefined ? undefined : (written1 - written0) / seconds,
      laneDepthMin: depths.length > 0 ? Math.min(...depths) : NaN,
      laneDepthMax: depths.length > 0 ? Math.max(...depths) : NaN,
      warmupSeconds,
      equilibrium: equilibrium && inEquilibrium(start, end),
      turnover: (start.decoded - w0.decoded) / job.n,
      seedSeconds,
      seedLogicalPerAmqp: seedAmqp > 0 ? job.n / seedAmqp : 0,
      toleranceKey,
      prefetch: workload.bundleMax > 1 ? 2 * Math.ceil(job.concurrency / workload.bundleMax) : job.concurrency,
    };
    progress('stopping');
  } catch (err) {
    progress(`failed: ${err instanceof Error ? err.message : String(err)}`);
    // A stuck daemon may keep declaring queues while they are deleted: in a child, leave the
    // namespace to the parent, which deletes it once this process (and its connections) is gone.
    if (job.parentCleansUp) {
      progress(`leaving ${namespace} to the parent to delete`);
      throw err;
    }
    await stopDaemon();
    await cleanup();
    throw err;
  }
  await stopDaemon();
  await cleanup();
  return result;
}
