/**
 * Collects what `orbit stats` shows: queue depths and consumers (passive declares, no
 * management plugin needed), in-flight counts from the daemons' `/metrics`, and the
 * forecast derived from the delay levels.
 */
import { probeQueues, type QueueCounts } from '../amqp/probe-queues';
import type { BrokerSession } from '../publish/session';
import { findStrandedLanes, type StrandedLanes, type StrandedQueue } from '../amqp/stranded-lanes';
import type { TopologyConfig } from '../config/types';
import { delayOfLane, ladderTolerances, laddersOf } from '../delay/routing';
import { buildTopology, ladderQueues, rungQueueSpec, type QueueSpec } from '../topology/build';
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
  readonly workAhead: LaneWorkAhead;
}

/**
 * A lane's work-ahead: its config (how early an idle lane may run delayed messages), and with
 * `--metrics-url` what the daemons did (null when unknown).
 */
export interface LaneWorkAhead {
  readonly enabled: boolean;
  /** Idle this long (free capacity, no delivery) before taking work early. */
  readonly idleMs: number;
  /** Never more than this much before a message is due. */
  readonly maxAdvanceMs: number;
  /** Messages taken early per second, per daemon, at most. */
  readonly maxRate: number;
  /** Messages run early since each daemon started, summed (`orbit_work_ahead_total`). */
  readonly taken: number | null;
  /** Daemons working ahead for this lane right now (`orbit_work_ahead_active`). */
  readonly activeDaemons: number | null;
}

export interface LevelStats {
  /** A binary level's number; undefined for a ladder rung. */
  readonly level: number | undefined;
  readonly queue: string;
  readonly messages: number;
  /** The queue's TTL: 2^level × unit for a binary level, the rung's delay for a rung. */
  readonly ttlMs: number;
  /** Its messages fall due within (0, dueWithinMs] from now: (2^(level+1) − 1) × unit, or a rung's TTL. */
  readonly dueWithinMs: number;
}

export interface StatsSnapshot {
  readonly namespace: string;
  readonly unitMs: number;
  /** ISO time the depths were sampled. */
  readonly sampledAt: string;
  readonly lanes: readonly LaneStats[];
  /**
   * The delay queues, soonest due first: every binary level (tolerance 0), or on the ladder
   * the rungs that exist and any binary levels an earlier layout left (draining).
   */
  readonly levels: readonly LevelStats[];
  /** `delay.tolerance`: above 0 the delay queues are ladder rungs. */
  readonly tolerance: number;
  /** Lanes with a tolerance of their own (`lanes[].tolerance`, other than `delay.tolerance`), by name. */
  readonly laneTolerances: Readonly<Record<string, number>>;
  /** On the ladder: how many rungs it has (of which `levels` lists those that exist). */
  readonly ladderRungs: number | undefined;
  readonly dead: number;
  readonly unroutable: number;
  /**
   * Queues of lanes the config no longer has (found in the namespace's lane record) that
   * still exist, with messages or not, and that nothing consumes: `orbit lanes move` empties them.
   */
  readonly stranded: readonly StrandedQueue[];
  /** Estimated messages due within the next minute, hour and day. */
  readonly forecast: Forecast;
  readonly notes: readonly string[];
}

export type { QueueCounts };

/**
 * Pure: turns per-queue counts (null or absent: the queue does not exist) into the snapshot.
 * Lanes are the configured ones, each summing every lane-role queue of that lane.
 */
export function summarize(
  config: TopologyConfig,
  queues: readonly QueueSpec[],
  counts: ReadonlyMap<string, QueueCounts | null>,
  inFlight: InFlightReport,
  sampledAt: Date,
  removed: Pick<StrandedLanes, 'stranded' | 'served'> = { stranded: [], served: [] },
): StatsSnapshot {
  const notes: string[] = [];
  for (const q of removed.served) {
    notes.push(`lane ${q.lane} is not in this config, but ${q.queue} has ${q.consumers} consumer(s) (a daemon with another config): not stranded`);
  }
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
    const { enabled, idleMs, maxAdvanceMs, maxRate } = lane.workAhead;
    const reported = inFlight.workAhead ? (inFlight.workAhead.get(lane.name) ?? { taken: 0, activeDaemons: 0 }) : null;
    const workAhead: LaneWorkAhead = { enabled, idleMs, maxAdvanceMs, maxRate, taken: reported?.taken ?? null, activeDaemons: reported?.activeDaemons ?? null };
    return { lane: lane.name, ready, consumers, inFlight: inFlightCount, queues: own.map((q) => q.name), bundleMax: lane.bundle.max, workAhead };
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
    .filter((q): q is QueueSpec & { ttlMs: number } => q.role === 'delay' && q.ttlMs !== undefined)
    .map((q) => ({
      level: q.level,
      queue: q.name,
      messages: depth(q).messageCount,
      ttlMs: q.ttlMs,
      dueWithinMs: q.level !== undefined ? levelWindowMs(q.level, unitMs) : q.ttlMs,
    }))
    .sort((a, b) => a.dueWithinMs - b.dueWithinMs);
  if (config.delay.tolerance > 0 && levels.some((l) => l.level !== undefined && l.messages > 0))
    notes.push('binary delay levels of an earlier layout (delay.tolerance 0) still hold messages; they drain into their lanes as they fall due');

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
    tolerance: config.delay.tolerance,
    // `delayOfLane` hands back the namespace's settings unless the lane's own tolerance counts.
    laneTolerances: Object.fromEntries(config.lanes.filter((l) => delayOfLane(config.delay, l) !== config.delay).map((l) => [l.name, l.tolerance])),
    ladderRungs: config.delay.tolerance > 0 ? laddersOf(ladderTolerances(config), config.delay.levels).length : undefined,
    dead,
    unroutable,
    stranded: removed.stranded,
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

/**
 * The queues `orbit stats` looks at: the topology's, and on the ladder every rung it could
 * have and the binary levels an earlier layout may have left — only those that exist are
 * kept (probed in parallel: most rungs of a ladder are never declared).
 */
async function queuesToShow(
  session: Pick<BrokerSession, 'connection'>,
  config: TopologyConfig,
  timeoutMs: number,
): Promise<{ queues: readonly QueueSpec[]; counts: Map<string, QueueCounts | null> }> {
  const { queues } = buildTopology(config);
  if (config.delay.tolerance <= 0) return { queues, counts: new Map() };
  const rungs = ladderQueues(config).map((r) => ({ ...rungQueueSpec(config, r.ttlMs), name: r.queue }));
  const binary = buildTopology({ ...config, delay: { ...config.delay, tolerance: 0, levels: MAX_OLD_LEVELS } }).queues.filter((q) => q.role === 'delay');
  const candidates = [...rungs, ...binary];
  const model = session.connection.connection;
  if (!model) throw new Error('not connected to the broker');
  const counts = await probeQueues(model, candidates.map((q) => q.name), timeoutMs);
  return { queues: [...queues, ...candidates.filter((q) => counts.get(q.name))], counts };
}

/** Binary levels looked for on the ladder: every level a config may have (`delay.levels` ≤ 40). */
const MAX_OLD_LEVELS = 40;

/** One snapshot of the namespace's queues, with in-flight counts and the forecast. */
export async function collectStats(
  session: Pick<BrokerSession, 'withChannel' | 'connection'>,
  config: TopologyConfig,
  options: CollectOptions = {},
): Promise<StatsSnapshot> {
  const timeoutMs = options.channelTimeoutMs ?? 30_000;
  const { queues, counts: probed } = await queuesToShow(session, config, timeoutMs);
  const rest = queues.filter((q) => !probed.has(q.name)).map((q) => q.name);
  const model = session.connection.connection;
  const [counts, inFlight, removed] = await Promise.all([
    sampleQueues(session, rest, timeoutMs),
    scrapeInFlight(options.metricsUrls ?? [], options.metricsTimeoutMs),
    // Read-only: the record is looked at, never declared or changed (no record: nothing shown).
    model ? findStrandedLanes(model, config, { mode: 'read', timeoutMs }) : undefined,
  ]);
  for (const [name, c] of probed) if (c) counts.set(name, c);
  return summarize(config, queues, counts, inFlight, new Date(), removed);
}
