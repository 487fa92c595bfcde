import type { QueueType, ResolvedConfig, TopologyConfig } from '../config/types';
import { rungExpiresMs } from '../delay/ladder';
import { ladderTolerances, laddersOf, levelTtlMs } from '../delay/routing';
import { names } from '../naming/names';
import { laneQueues, partitionDestination } from '../naming/partition';
import { CURRENT_BROKER, QUORUM_DELIVERY_LIMIT, type BrokerFeatures } from './broker-features';

/**
 * Topology is data: this pure function turns the config into every exchange, queue and
 * binding orbit needs. `assert.ts` declares the result on the broker; tests and
 * `orbit topology` inspect it without one.
 */

export type QueueArguments = Readonly<Record<string, string | number>>;

export interface ExchangeSpec {
  readonly name: string;
  readonly type: 'topic' | 'fanout';
  readonly arguments: QueueArguments;
}

export interface QueueSpec {
  readonly name: string;
  /** What the queue is for; drives metrics and `orbit stats`. */
  readonly role: 'delay' | 'lane' | 'dead' | 'unroutable' | 'tombstones';
  readonly arguments: QueueArguments;
  /** For binary delay levels: the level; for lane queues: the lane name. */
  readonly level?: number;
  /** For delay queues: the TTL (a ladder rung has no level). */
  readonly ttlMs?: number;
  readonly lane?: string;
}

export interface BindingSpec {
  /** `queue`: exchange → queue; `exchange`: exchange → exchange. */
  readonly kind: 'queue' | 'exchange';
  readonly source: string;
  readonly destination: string;
  readonly pattern: string;
}

export interface Topology {
  readonly exchanges: readonly ExchangeSpec[];
  readonly queues: readonly QueueSpec[];
  readonly bindings: readonly BindingSpec[];
}

/**
 * Arguments that keep a queue's backlog on disk and never drop a message by itself:
 * classic with the v2 index (lazy where the broker still has modes: before 3.12; 4.3
 * refuses `x-queue-mode` outright; 4.x has only v2 and no longer takes the version), or quorum with orbit's own delivery limit (4.0 would
 * otherwise drop a message returned 20 times, and looking at a queue returns messages).
 */
export function storageArguments(type: QueueType, broker: BrokerFeatures = CURRENT_BROKER): QueueArguments {
  if (type === 'quorum') return { 'x-queue-type': 'quorum', 'x-delivery-limit': QUORUM_DELIVERY_LIMIT };
  if (broker.queueMode) return { 'x-queue-type': 'classic', 'x-queue-mode': 'lazy', 'x-queue-version': 2 };
  return broker.queueVersion ? { 'x-queue-type': 'classic', 'x-queue-version': 2 } : { 'x-queue-type': 'classic' };
}

/**
 * Quorum delay levels dead-letter at-least-once, which RabbitMQ only allows together with
 * `reject-publish` overflow: a message is never dropped between two levels.
 */
function delayQueueArguments(type: QueueType, broker: BrokerFeatures): QueueArguments {
  return type === 'quorum'
    ? { ...storageArguments(type, broker), 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' }
    : storageArguments(type, broker);
}

/** Exchange-pattern that matches the bit word of `level` being `bit`. */
export function levelPattern(level: number, levels: number, bit: 0 | 1): string {
  return `${'*.'.repeat(levels - 1 - level)}${bit}.#`;
}

/**
 * `broker`: the connected broker's features (the arguments differ between versions); a
 * current 4.x broker when there is none, as for `orbit topology --dry-run`.
 */
export function buildTopology(
  config: TopologyConfig,
  broker: BrokerFeatures = CURRENT_BROKER,
): Topology {
  const n = names(config.namespace);
  const { levels, unitMs, queueType } = config.delay;
  const exchanges: ExchangeSpec[] = [];
  const queues: QueueSpec[] = [];
  const bindings: BindingSpec[] = [];

  exchanges.push({ name: n.unroutable, type: 'fanout', arguments: {} });
  // The dead and unroutable queues do not follow `delay.queueType` (`DeadLettersConfig`):
  // nothing dead-letters out of them, and a quorum queue moves what a look hands back to its
  // end (`amqp/hand-back.ts`), so paging through dead letters would shuffle them.
  const deadType = config.deadLetters.queueType;
  queues.push({ name: n.unroutable, role: 'unroutable', arguments: storageArguments(deadType, broker) });
  bindings.push({ kind: 'queue', source: n.unroutable, destination: n.unroutable, pattern: '' });

  // Anything the deliver exchange cannot route lands in `unroutable` instead of blocking a level.
  exchanges.push({ name: n.deliver, type: 'topic', arguments: { 'alternate-exchange': n.unroutable } });

  // With a tolerance the delay queues are the ladder's rungs, declared when first used
  // (`rungQueueSpec`); the binary levels are not declared (an older layout's keep draining).
  for (let level = config.delay.tolerance > 0 ? -1 : levels - 1; level >= 0; level--) {
    const name = n.delayLevel(level);
    const next = level === 0 ? n.deliver : n.delayLevel(level - 1);
    exchanges.push({ name, type: 'topic', arguments: {} });
    queues.push({
      name,
      role: 'delay',
      level,
      ttlMs: levelTtlMs(level, unitMs),
      arguments: {
        ...delayQueueArguments(queueType, broker),
        'x-message-ttl': levelTtlMs(level, unitMs),
        'x-dead-letter-exchange': next,
      },
    });
    bindings.push({ kind: 'queue', source: name, destination: name, pattern: levelPattern(level, levels, 1) });
    bindings.push({ kind: 'exchange', source: name, destination: next, pattern: levelPattern(level, levels, 0) });
  }

  for (const lane of config.lanes) {
    // Classic queues take their priority levels from `x-max-priority`; 4.x quorum queues
    // have two levels built in and refuse the argument (3.x quorum: none, see brokerProblems).
    const args: Record<string, string | number> = { ...storageArguments(lane.queueType, broker) };
    if (lane.maxPriority > 0 && lane.queueType === 'classic') args['x-max-priority'] = lane.maxPriority;
    laneQueues(lane, n).forEach((name, p) => {
      queues.push({ name, role: 'lane', lane: lane.name, arguments: args });
      const destination = partitionDestination(lane, p);
      bindings.push({ kind: 'queue', source: n.deliver, destination: name, pattern: `#.${destination}` });
    });
  }

  queues.push({ name: n.dead, role: 'dead', arguments: storageArguments(deadType, broker) });

  return { exchanges, queues, bindings };
}

/**
 * The namespace's tombstone stream (README, "Cancel and replace"): a stream, so every daemon
 * reads all of it from the start and none consumes it away. Not in `buildTopology`: the first
 * cancel declares it (a namespace that never cancels has none). RabbitMQ retires whole segments
 * older than `x-max-age`: small segments (4 MB, ~30,000 tombstones) keep that close to the
 * retention, where the default (500 MB) would keep everything.
 */
export function tombstoneStreamSpec(config: Pick<ResolvedConfig, 'namespace' | 'cancel'>): QueueSpec {
  return {
    name: names(config.namespace).tombstones,
    role: 'tombstones',
    arguments: { 'x-queue-type': 'stream', 'x-max-age': `${Math.ceil(config.cancel.retentionMs / 1000)}s`, 'x-stream-max-segment-size-bytes': 4_000_000 },
  };
}

/**
 * The queue of a ladder rung (DESIGN.md, "Precision"): a fixed TTL, dead-lettering into the
 * deliver exchange with the message's own `CC` key, and deleted by the broker once unused
 * for `rungExpiresMs` (publishers renew it well before: `delay/ladder.ts`).
 */
export function rungQueueSpec(
  config: Pick<ResolvedConfig, 'namespace' | 'delay'>,
  ttlMs: number,
  broker: BrokerFeatures = CURRENT_BROKER,
): QueueSpec {
  const n = names(config.namespace);
  return {
    name: n.rung(ttlMs),
    role: 'delay',
    ttlMs,
    arguments: {
      ...delayQueueArguments(config.delay.queueType, broker),
      'x-message-ttl': ttlMs,
      'x-dead-letter-exchange': n.deliver,
      'x-expires': rungExpiresMs(ttlMs),
    },
  };
}

/**
 * Every rung queue the config's ladders can have (the namespace's and each lane's own
 * `lanes[].tolerance`, each TTL once), shortest TTL first (on quorum, each TTL twice:
 * priorities 5+ wait in rungs of their own). What discovery and `orbit stats` probe.
 */
export function ladderQueues(config: Pick<ResolvedConfig, 'namespace' | 'delay' | 'lanes'>): Array<{ readonly queue: string; readonly ttlMs: number }> {
  const { levels, unitMs, queueType } = config.delay;
  const tolerances = ladderTolerances(config);
  if (tolerances.length === 0) return [];
  const n = names(config.namespace);
  return laddersOf(tolerances, levels).flatMap((units) => {
    const ttlMs = units * unitMs;
    const normal = { queue: n.rung(ttlMs), ttlMs };
    return queueType === 'quorum' ? [normal, { queue: n.rung(ttlMs, true), ttlMs }] : [normal];
  });
}

