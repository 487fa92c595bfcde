import type { ChannelModel } from 'amqplib';
import type { TopologyConfig } from '../config/types';
import { laneRecordEntries, unconfiguredQueues, type LaneRecordEntry } from '../topology/lane-record';
import { readLaneRecord, updateLaneRecord } from './lane-record-queue';
import { probeQueues, type QueueCounts } from './probe-queues';

/** A recorded lane queue the config no longer declares, as the broker counts it. */
export interface StrandedQueue {
  readonly lane: string;
  readonly queue: string;
  readonly messages: number;
  readonly consumers: number;
}

export interface StrandedLanes {
  /** False when the namespace has no lane record (nothing was ever recorded, or it was deleted). */
  readonly recorded: boolean;
  /**
   * Queues of lanes this config does not have that nobody consumes: a removed (or renamed, or
   * re-partitioned) lane, whose messages wait there for good unless moved.
   */
  readonly stranded: readonly StrandedQueue[];
  /**
   * Queues of lanes this config does not have that a process consumes: a daemon with another
   * config (one lane per daemon, say) serves them; nothing is stranded.
   */
  readonly served: readonly StrandedQueue[];
  /** Recorded queues that no longer exist (deleted by the user). */
  readonly gone: readonly string[];
}

/** Pure: sorts the candidates by what the broker said of each (null: no such queue). */
export function classifyStranded(
  candidates: readonly LaneRecordEntry[],
  counts: ReadonlyMap<string, QueueCounts | null>,
): Omit<StrandedLanes, 'recorded'> {
  const stranded: StrandedQueue[] = [];
  const served: StrandedQueue[] = [];
  const gone: string[] = [];
  for (const c of candidates) {
    const count = counts.get(c.queue);
    if (count === undefined) continue; // not probed (a probe cut short): no verdict
    if (count === null) {
      gone.push(c.queue);
      continue;
    }
    const q = { lane: c.lane, queue: c.queue, messages: count.messageCount, consumers: count.consumerCount };
    (q.consumers > 0 ? served : stranded).push(q);
  }
  return { stranded, served, gone };
}

export interface FindStrandedOptions {
  /**
   * `record` (a daemon at start, `orbit topology`): add the config's lane queues to the
   * record (declaring it when missing) and forget recorded queues found deleted. `read`
   * (`orbit stats`): declare and change nothing.
   */
  readonly mode: 'record' | 'read';
  /** @defaultValue 10 s */
  readonly timeoutMs?: number;
}

/**
 * The lane queues the namespace had that this config no longer has (`topology/lane-record.ts`),
 * each checked with a passive declare.
 */
export async function findStrandedLanes(
  model: ChannelModel,
  config: TopologyConfig,
  options: FindStrandedOptions,
): Promise<StrandedLanes> {
  const configured = laneRecordEntries(config);
  const record =
    options.mode === 'record' ? await updateLaneRecord(model, config.namespace, configured) : await readLaneRecord(model, config.namespace);
  if (record === null) return { recorded: false, stranded: [], served: [], gone: [] };
  const candidates = unconfiguredQueues(record, configured);
  if (candidates.length === 0) return { recorded: true, stranded: [], served: [], gone: [] };
  const counts = await probeQueues(model, candidates.map((c) => c.queue), options.timeoutMs ?? 10_000);
  const found = classifyStranded(candidates, counts);
  // A queue the user deleted is done with: the record forgets it, so no start warns of it again.
  if (options.mode === 'record' && found.gone.length > 0) await updateLaneRecord(model, config.namespace, [], new Set(found.gone));
  return { recorded: true, ...found };
}
