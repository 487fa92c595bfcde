/**
 * Names of everything orbit declares. One place, so the topology builder, the publisher,
 * the consumer and the CLI can never disagree.
 */
import { formatDuration, parseDuration } from '../config/durations';

/**
 * RabbitMQ 4.x quorum queues have two priority levels, 0–4 and 5 and above, and serve (and
 * expire) the high one first: in a delay queue a normal message would wait behind every high
 * one that came after it. So on quorum the ladder keeps the two apart, a rung for each.
 */
export const QUORUM_HIGH_PRIORITY = 5;

export interface Names {
  readonly namespace: string;
  delayLevel(level: number): string;
  /**
   * Queue of the ladder rung whose TTL is `ttlMs` (`<ns>.wait:1h30m`). Named by its TTL, so
   * any ladder (another tolerance or unit) shares the rungs it has in common, and with a
   * `:`, which no lane name has, so the name (a routing key when the message dead-letters)
   * never matches a lane's `#.<lane>` binding on the deliver exchange. `high`: the rung of
   * priorities 5 and above on quorum delay queues (`<ns>.wait-high:1h30m`, see
   * `QUORUM_HIGH_PRIORITY`).
   */
  rung(ttlMs: number, high?: boolean): string;
  /** The TTL of a rung queue's name; undefined for any other name. */
  rungTtlOf(queue: string): number | undefined;
  /**
   * The `CC` routing key that takes a message from its rung to `destination` when it
   * dead-letters into the deliver exchange. Not the name of any queue orbit declares: the
   * default exchange, which routes the publish to the rung, routes the `CC` key nowhere.
   */
  toDestination(destination: string): string;
  /** The destination a `toDestination` key names; undefined for any other key. */
  destinationOfKey(key: string): string | undefined;
  readonly deliver: string;
  readonly unroutable: string;
  readonly dead: string;
  /** The stream of cancels (tombstones) every daemon follows (`amqp/tombstone-follower.ts`). */
  readonly tombstones: string;
  /** A fanout exchange: "the tombstone stream now exists", to daemons that started before it did. */
  readonly cancelSignal: string;
  /**
   * The record of every lane queue the namespace has had (`topology/lane-record.ts`): how a
   * daemon finds the queue of a lane removed from its config, which AMQP cannot list.
   */
  readonly laneRecord: string;
  lane(lane: string): string;
  /** Queue of partition `p` of a partitioned lane. */
  lanePartition(lane: string, p: number): string;
}

export function names(namespace: string): Names {
  const rungPrefix = `${namespace}.wait:`;
  const highRungPrefix = `${namespace}.wait-high:`;
  return {
    namespace,
    delayLevel: (level) => `${namespace}.delay.${level}`,
    rung: (ttlMs, high = false) => `${high ? highRungPrefix : rungPrefix}${formatDuration(ttlMs)}`,
    rungTtlOf: (queue) => {
      const prefix = queue.startsWith(rungPrefix) ? rungPrefix : queue.startsWith(highRungPrefix) ? highRungPrefix : undefined;
      if (prefix === undefined) return undefined;
      try {
        const ttl = parseDuration(queue.slice(prefix.length));
        return ttl > 0 ? ttl : undefined;
      } catch {
        return undefined;
      }
    },
    toDestination: (destination) => `${namespace}.to.${destination}`,
    destinationOfKey: (key) => (key.startsWith(`${namespace}.to.`) ? key.slice(namespace.length + 4) : undefined),
    deliver: `${namespace}.deliver`,
    unroutable: `${namespace}.unroutable`,
    dead: `${namespace}.dead`,
    tombstones: `${namespace}.cancelled`,
    cancelSignal: `${namespace}.cancel-signal`,
    laneRecord: `${namespace}.lane-record`,
    lane: (lane) => `${namespace}.lane.${lane}`,
    lanePartition: (lane, p) => `${namespace}.lane.${lane}.${p}`,
  };
}
