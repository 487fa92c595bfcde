import type { TopologyConfig } from '../config/types';
import { names } from '../naming/names';
import { buildTopology } from './build';

/**
 * The lane record: which lane queues a namespace has had. AMQP 0-9-1 cannot list queues (and
 * the management plugin may be off), so a lane removed from the config would leave its queue
 * behind — still bound, still collecting the lane's messages — where nothing ever looks.
 * `start` and `topology` record every lane queue they declare in `<ns>.lane-record`, and a
 * daemon looks at the recorded queues its config no longer has (`amqp/stranded-lanes.ts`).
 *
 * On the broker the record is a small classic queue holding one message per lane queue
 * (`amqp/lane-record-queue.ts`). This file is its pure part: what to record, the message
 * format, and how an update changes the record.
 */

/** One recorded lane queue. */
export interface LaneRecordEntry {
  readonly lane: string;
  readonly queue: string;
}

/**
 * Every lane queue the config declares (one per lane, or one per partition). A queue rather
 * than a lane is recorded, so a lane whose partitions changed leaves its old queues findable too.
 */
export function laneRecordEntries(config: TopologyConfig): LaneRecordEntry[] {
  return buildTopology(config)
    .queues.filter((q) => q.role === 'lane' && q.lane !== undefined)
    .map((q) => ({ lane: q.lane!, queue: q.name }));
}

/** The body of the record message for `entry`. */
export function encodeEntry(entry: LaneRecordEntry): Buffer {
  return Buffer.from(JSON.stringify({ lane: entry.lane, queue: entry.queue }));
}

/**
 * The entry a record message holds; undefined for anything else (a message put there by
 * hand). Only a lane queue of `namespace` is accepted: the record must never make orbit
 * look at, or move messages out of, a queue that is not one of its lanes.
 */
export function decodeEntry(body: Buffer, namespace: string): LaneRecordEntry | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const { lane, queue } = parsed as { lane?: unknown; queue?: unknown };
  if (typeof lane !== 'string' || lane === '' || typeof queue !== 'string') return undefined;
  const n = names(namespace);
  const own = queue === n.lane(lane) || new RegExp(`^${escapeRegExp(n.lane(lane))}\\.\\d+$`).test(queue);
  return own ? { lane, queue } : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface RecordUpdate {
  /** For each message read from the record, in order: keep it (true) or remove it. */
  readonly keep: readonly boolean[];
  /** Entries to add. */
  readonly add: readonly LaneRecordEntry[];
  /** The record once updated. */
  readonly record: readonly LaneRecordEntry[];
}

/**
 * Pure: how to bring the record (`existing`: each message's entry, undefined when it holds
 * none) to one that has every `wanted` queue and none of `drop`. Duplicates (two daemons that
 * recorded the same queue at once) and unreadable messages are removed, so the record stays
 * one message per queue.
 */
export function planRecordUpdate(
  existing: ReadonlyArray<LaneRecordEntry | undefined>,
  wanted: readonly LaneRecordEntry[],
  drop: ReadonlySet<string> = new Set(),
): RecordUpdate {
  const seen = new Set<string>();
  const record: LaneRecordEntry[] = [];
  const keep = existing.map((entry) => {
    if (entry === undefined || seen.has(entry.queue) || drop.has(entry.queue)) return false;
    seen.add(entry.queue);
    record.push(entry);
    return true;
  });
  const add: LaneRecordEntry[] = [];
  for (const entry of wanted) {
    if (seen.has(entry.queue) || drop.has(entry.queue)) continue;
    seen.add(entry.queue);
    add.push(entry);
    record.push(entry);
  }
  return { keep, add, record };
}

/**
 * Pure: the recorded queues a config does not declare (each once, in record order): the
 * candidates for a stranded lane. Whether one is stranded depends on the broker: it may be
 * gone (deleted by the user), or consumed by a daemon with another config.
 */
export function unconfiguredQueues(
  record: readonly LaneRecordEntry[],
  configured: readonly LaneRecordEntry[],
): LaneRecordEntry[] {
  const own = new Set(configured.map((e) => e.queue));
  const seen = new Set<string>();
  return record.filter((e) => {
    if (own.has(e.queue) || seen.has(e.queue)) return false;
    seen.add(e.queue);
    return true;
  });
}
