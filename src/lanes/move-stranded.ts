import type { ConsumeMessage } from 'amqplib';
import { drainQueue } from '../amqp/drain-queue';
import { readLaneRecord } from '../amqp/lane-record-queue';
import type { BrokerSession } from '../publish/session';
import type { LaneConfig, ResolvedConfig, TopologyConfig } from '../config/types';
import { BadBodyError, BrokerError, errnoCode, errorMessage, InvalidMessageError, OrbitError } from '../errors';
import { BUNDLE_HEADER, decodeBundle } from '../message/bundle';
import { headersOf, messageIdOf, readState, userHeaders, withoutBrokerHeaders } from '../message/headers';
import type { OutgoingMessage } from '../message/types';
import { laneRecordEntries, unconfiguredQueues, type LaneRecordEntry } from '../topology/lane-record';
import { names } from '../naming/names';

export interface MoveLaneOptions {
  /** The lane whose stranded queues are emptied (no longer in the config, or re-partitioned). */
  readonly from: string;
  /** A lane of the config that receives the messages. */
  readonly to: string;
  /** Move at most this many AMQP messages (a bundle counts once). @defaultValue all */
  readonly limit?: number;
  /** Told before each queue is emptied. */
  readonly onQueue?: (queue: string, messages: number) => void;
}

export interface MovedQueue {
  readonly queue: string;
  /** AMQP messages moved (each confirmed in the target lane before it was removed here). */
  readonly moved: number;
  /** Logical messages they held (more than `moved` when some were bundles). */
  readonly logical: number;
  /** Bundles that did not decode, sent to `<ns>.dead` with BAD_BODY as the lane's worker would. */
  readonly badBodies: number;
  /** Messages still in the queue afterwards (past the limit, or arrived meanwhile). */
  readonly left: number;
}

/**
 * Pure: what a message of a stranded lane queue becomes in lane `to` — what `orbit dlq
 * replay` makes of a dead letter: the same id, body, user headers, runs and partition key,
 * due now, attempts reset, priority capped to the lane's. A bundle becomes its logical
 * messages (re-bundled if `to` bundles). Throws BadBodyError for a bundle that does not decode.
 */
export function movedMessages(msg: Pick<ConsumeMessage, 'content' | 'properties'>, to: Pick<LaneConfig, 'name' | 'maxPriority'>, now: number): OutgoingMessage[] {
  const headers = headersOf(msg);
  const priority = typeof msg.properties.priority === 'number' ? Math.max(0, Math.min(msg.properties.priority, to.maxPriority)) : 0;
  const version = headers[BUNDLE_HEADER];
  if (version !== undefined) {
    return decodeBundle(msg.content, version).map((e) => ({
      id: e.id,
      lane: to.name,
      body: e.body,
      priority,
      dueAt: now,
      delayMs: 0,
      runs: e.runs,
      attempt: 0,
      key: e.key,
      generation: e.generation,
      headers: {},
    }));
  }
  const state = readState(headers, now);
  return [
    {
      id: messageIdOf(msg.properties.messageId),
      lane: to.name,
      body: msg.content,
      priority,
      dueAt: now,
      delayMs: 0,
      runs: state.runs,
      attempt: 0,
      key: state.key,
      generation: state.generation,
      headers: userHeaders(headers),
    },
  ];
}

/**
 * The queues `orbit lanes move --from` empties: the recorded queues of lane `from` that the
 * config does not declare. A lane removed before orbit kept a record is found by its name.
 */
export async function sourceQueues(session: Pick<BrokerSession, 'connection'>, config: TopologyConfig, from: string): Promise<LaneRecordEntry[]> {
  const model = session.connection.connection;
  if (!model) throw new BrokerError('not connected to the broker', { code: 'NOT_CONNECTED' });
  const configured = laneRecordEntries(config);
  const record = (await readLaneRecord(model, config.namespace)) ?? [];
  const found = unconfiguredQueues(record, configured).filter((e) => e.lane === from);
  if (found.length > 0) return found;
  if (config.lanes.some((l) => l.name === from)) {
    throw new InvalidMessageError(`lane "${from}" is in the config and none of its queues is stranded: nothing to move`, { code: 'LANE_NOT_STRANDED' });
  }
  return [{ lane: from, queue: names(config.namespace).lane(from) }];
}

/**
 * `orbit lanes move`: empties the stranded queues of lane `from` into lane `to`, each message
 * removed only once its copy in `to` is confirmed (the loop `orbit migrate` moves queues
 * with: `amqp/drain-queue.ts`). Refuses a queue a process consumes: a daemon whose config
 * still has the lane is running, and the lane is not stranded.
 *
 * The source queue stays (bound, so messages still on their way to the old lane keep landing
 * there, where stats and metrics see them, and another move takes them): delete it once
 * empty to retire the lane for good; the next `orbit start` then forgets it.
 */
export async function moveStrandedLane(session: BrokerSession, config: ResolvedConfig, options: MoveLaneOptions): Promise<MovedQueue[]> {
  const target = config.lanes.find((l) => l.name === options.to);
  if (!target) {
    throw new InvalidMessageError(`--to: no lane "${options.to}" in the config (lanes: ${config.lanes.map((l) => l.name).join(', ') || 'none'})`, { code: 'UNKNOWN_LANE' });
  }
  const sources = await sourceQueues(session, config, options.from);
  let remaining = options.limit ?? Infinity;
  const out: MovedQueue[] = [];
  for (const source of sources) {
    let logical = 0;
    let badBodies = 0;
    const forward = async (msg: ConsumeMessage): Promise<void> => {
      const now = Date.now();
      let moved: OutgoingMessage[];
      try {
        moved = movedMessages(msg, target, now);
      } catch (err) {
        if (!(err instanceof BadBodyError)) throw err;
        badBodies++;
        await deadLetterBadBundle(session, msg, options.from, err, now);
        return;
      }
      await Promise.all(moved.map((m) => session.publisher.schedule(m, 'publish')));
      logical += moved.length;
    };
    const result = await step(`move ${source.queue} → lane ${target.name}`, () =>
      session.withChannel('lanes-move', async (ch) => {
        let counts: { messageCount: number; consumerCount: number };
        try {
          counts = await ch.checkQueue(source.queue);
        } catch (err) {
          if (errnoCode(err) === 404) return undefined;
          throw err;
        }
        if (counts.consumerCount > 0) {
          throw new BrokerError(
            `${source.queue} has ${counts.consumerCount} consumer(s): a daemon whose config still has lane "${source.lane}" is running, so it is not stranded`,
            { code: 'QUEUE_IN_USE' },
          );
        }
        options.onQueue?.(source.queue, counts.messageCount);
        const moved = await drainQueue(ch, source.queue, forward, { limit: remaining });
        return moved;
      }),
    );
    if (result === undefined) continue; // deleted meanwhile: nothing to move
    remaining -= result;
    const left = await step(`count ${source.queue}`, () =>
      session.withChannel('lanes-move', async (ch) => (await ch.checkQueue(source.queue)).messageCount),
    );
    out.push({ queue: source.queue, moved: result, logical, badBodies, left });
  }
  return out;
}

/** A bundle that does not decode: to `<ns>.dead`, kept whole, as the lane's worker would have. */
function deadLetterBadBundle(session: BrokerSession, msg: ConsumeMessage, lane: string, err: BadBodyError, now: number): Promise<void> {
  const p = msg.properties;
  return session.publisher.deadLetter(
    {
      id: messageIdOf(p.messageId),
      body: msg.content,
      priority: typeof p.priority === 'number' ? p.priority : 0,
      headers: withoutBrokerHeaders(headersOf(msg)),
      contentType: typeof p.contentType === 'string' ? p.contentType : undefined,
    },
    { code: err.code, message: err.message, lane, attempts: 0 },
    now,
  );
}

async function step<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof OrbitError) throw err;
    throw new BrokerError(`lanes move: ${what}: ${errorMessage(err)}`, { cause: err, code: 'MOVE_FAILED' });
  }
}
