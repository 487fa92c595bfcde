/**
 * Collects what `orbit stats` shows: queue depths and consumers (passive declares, no
 * management plugin needed), in-flight counts from the daemons' `/metrics`, and the
 * forecast derived from the delay levels.
 */
import type { BrokerSession } from '../amqp/session';
import type { ResolvedConfig } from '../config/types';
import { levelTtlMs } from '../delay/routing';
import { buildTopology, type QueueSpec } from '../topology/build';
import { forecast, levelWindowMs, type Forecast } from './forecast';
import { scrapeInFlight, type InFlightReport } from './in-flight';

export interface LaneStats {
  readonly lane: string;
  /** Ready messages, summed over the lane's queues (partitions). */
  readonly ready: number;
  /** Consumers, summed over the lane's queues. */
  readonly consumers: number;
  /** Unacked messages per the daemons' /metrics; null when unknown. */
  readonly inFlight: number | null;
  readonly queues: readonly string[];
  /** The lane's `bundle.max`: above 1, each AMQP message counted here holds up to that many logical messages. */
  readonly bundleMax: number;
}

export interface LevelStats {
  readonly level: number;
  readonly queue: string;
  readonly messages: number;
  /** The level queue's TTL: 2^level × unit. */
  readonly ttlMs: number;
  /** Its messages fall due within (0, dueWithinMs] from now: (2^(level+1) − 1) × unit. */
  readonly dueWithinMs: number;
}

export interface StatsSnapshot {
  readonly namespace: string;
  readonly unitMs: number;
  /** ISO time the depths were sampled. */
  readonly sampledAt: string;
  readonly lanes: readonly LaneStats[];
  /** Every delay level, lowest first. */
  readonly levels: readonly LevelStats[];
  readonly dead: number;
  readonly unroutable: number;
  /** Estimated messages due within the next minute, hour and day. */
  readonly forecast: Forecast;
  readonly notes: readonly string[];
}

export interface QueueCounts {
  readonly messageCount: number;
  readonly consumerCount: number;
}

/**
 * Pure: turns per-queue counts (null or absent: the queue does not exist) into the snapshot.
 * Lanes are the configured ones, each summing every lane-role queue of that lane.
 */
export function summarize(
  config: Pick<ResolvedConfig, 'namespace' | 'delay' | 'lanes'>,
  queues: readonly QueueSpec[],
  counts: ReadonlyMap<string, QueueCounts | null>,
  inFlight: InFlightReport,
  sampledAt: Date,
): StatsSnapshot {
  const notes: string[] = [];
  const depth = (q: QueueSpec): QueueCounts => {
    const c = counts.get(q.name);
    if (c) return c;
    notes.push(`queue ${q.name} not found (counted as 0)`);
    return { messageCount: 0, consumerCount: 0 };
  };
  const { unitMs } = config.delay;

  const lanes: LaneStats[] = config.lanes.map((lane) => {
    const own = queues.filter((q) => q.role === 'lane' && q.lane === lane.name);
    let ready = 0;
    let consumers = 0;
    for (const q of own) {
      const c = depth(q);
      ready += c.messageCount;
      consumers += c.consumerCount;
    }
    const inFlightCount = inFlight.byLane === null ? null : (inFlight.byLane.get(lane.name) ?? 0);
    return { lane: lane.name, ready, consumers, inFlight: inFlightCount, queues: own.map((q) => q.name), bundleMax: lane.bundle.max };
  });
  // The broker counts AMQP messages; how many logical messages a bundle holds is only known
  // by reading it, which a stats screen must not do to millions of messages.
  const bundled = lanes.filter((l) => l.bundleMax > 1);
  if (bundled.length > 0)
    notes.push(
      `bundled lane${bundled.length === 1 ? '' : 's'} ${bundled.map((l) => `${l.lane} (up to ${l.bundleMax} per message)`).join(', ')}: ` +
        'counts are AMQP messages, so their ready, delayed and forecast figures count bundles, not logical messages ' +
        '(orbit_bundle_size on /metrics shows how full the bundles are)',
    );

  const levels: LevelStats[] = queues
    .filter((q): q is QueueSpec & { level: number } => q.role === 'delay' && q.level !== undefined)
    .sort((a, b) => a.level - b.level)
    .map((q) => ({
      level: q.level,
      queue: q.name,
      messages: depth(q).messageCount,
      ttlMs: levelTtlMs(q.level, unitMs),
      dueWithinMs: levelWindowMs(q.level, unitMs),
    }));

  const sumRole = (role: QueueSpec['role']) =>
    queues.filter((q) => q.role === role).reduce((n, q) => n + depth(q).messageCount, 0);
  const dead = sumRole('dead');
  const unroutable = sumRole('unroutable');

  const readyNow = lanes.reduce((n, l) => n + l.ready, 0);
  return {
    namespace: config.namespace,
    unitMs,
    sampledAt: sampledAt.toISOString(),
    lanes,
    levels,
    dead,
    unroutable,
    forecast: forecast({ readyNow, levels, unitMs }),
    notes: [...notes, ...inFlight.notes],
  };
}

/**
 * Message and consumer counts of each queue by passive declare. A missing queue closes the
 * channel (404), so sampling goes on from the next queue on a fresh one.
 */
export async function sampleQueues(
  session: Pick<BrokerSession, 'withChannel'>,
  names: readonly string[],
  timeoutMs = 30_000,
): Promise<Map<string, QueueCounts | null>> {
  const counts = new Map<string, QueueCounts | null>();
  let rest = [...names];
  while (rest.length > 0) {
    rest = await session.withChannel(
      'stats',
      async (ch) => {
        for (let i = 0; i < rest.length; i++) {
          const name = rest[i]!;
          try {
            const { messageCount, consumerCount } = await ch.checkQueue(name);
            counts.set(name, { messageCount, consumerCount });
          } catch {
            counts.set(name, null);
            return rest.slice(i + 1);
          }
        }
        return [];
      },
      timeoutMs,
    );
  }
  return counts;
}

export interface CollectOptions {
  /** Daemons' /metrics endpoints for in-flight counts. */
  readonly metricsUrls?: readonly URL[];
  /** @defaultValue 2 s */
  readonly metricsTimeoutMs?: number;
  /** How long to wait for a broker channel. @defaultValue 30 s */
  readonly channelTimeoutMs?: number;
}

/** One snapshot of the namespace's queues, with in-flight counts and the forecast. */
export async function collectStats(
  session: Pick<BrokerSession, 'withChannel'>,
  config: Pick<ResolvedConfig, 'namespace' | 'delay' | 'lanes'>,
  options: CollectOptions = {},
): Promise<StatsSnapshot> {
  const { queues } = buildTopology(config);
  const [counts, inFlight] = await Promise.all([
    sampleQueues(session, queues.map((q) => q.name), options.channelTimeoutMs),
    scrapeInFlight(options.metricsUrls ?? [], options.metricsTimeoutMs),
  ]);
  return summarize(config, queues, counts, inFlight, new Date());
}
