import type { LaneConfig } from '../config/types';
import type { Names } from './names';

/**
 * Partitioned lanes (`partitions: N`): a message goes to partition hash(key ?? id) mod N,
 * so a message keeps its partition across reschedules and retries. Pure.
 *
 * The routing-key destination of partition p is `<lane>~<p>`: one word (a dot would make
 * `#.<lane>` bindings ambiguous), and `~` cannot occur in lane names, so no other lane's
 * binding can match it.
 */
export function partitionOf(key: string, partitions: number): number {
  if (partitions <= 1) return 0;
  // FNV-1a, 32 bit: fast, stable across processes and versions, spreads short ids well.
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/** The routing-key destination word of a message for `lane`. */
export function destinationFor(lane: Pick<LaneConfig, 'name' | 'partitions'>, key: string): string {
  return partitionDestination(lane, partitionOf(key, lane.partitions));
}

/** The routing-key destination word of partition `p` of `lane` (the lane's name when unpartitioned). */
export function partitionDestination(lane: Pick<LaneConfig, 'name' | 'partitions'>, p: number): string {
  return lane.partitions > 1 ? `${lane.name}~${p}` : lane.name;
}

/** The lane a destination word belongs to. */
export function laneOfDestination(destination: string): string {
  const tilde = destination.indexOf('~');
  return tilde < 0 ? destination : destination.slice(0, tilde);
}

/** Every queue of a lane: one, or one per partition. */
export function laneQueues(lane: Pick<LaneConfig, 'name' | 'partitions'>, n: Pick<Names, 'lane' | 'lanePartition'>): string[] {
  if (lane.partitions <= 1) return [n.lane(lane.name)];
  return Array.from({ length: lane.partitions }, (_, p) => n.lanePartition(lane.name, p));
}
