import type { Channel, Message } from 'amqplib';
import { handBack } from '../amqp/hand-back';
import { walkHead } from '../amqp/walk-head';
import type { TopologyAsserter } from '../amqp/topology-asserter';
import type { MessagePublisher } from '../publish/message-publisher';
import type { LaneConfig } from '../config/types';
import { BadBodyError, BrokerError, errorMessage, OrbitError } from '../errors';
import { headersOf } from '../message/headers';
import type { OutgoingMessage } from '../message/types';
import { names } from '../naming/names';
import { movedMessages } from '../lanes/move-stranded';
import { describeDeadMessage, laneOf, type DeadMessageView } from './describe';

/**
 * What the dead-letter queue needs of the broker: a `BrokerSession` (the CLI, the console), or
 * the daemon's own connections (`worker/unroutable-return.ts`).
 */
export interface DeadLetterAccess {
  readonly namespace: string;
  /** Runs `fn` on a channel of its own, closed afterwards (which hands back what was not acked). */
  withChannel<T>(name: string, fn: (channel: Channel) => Promise<T>): Promise<T>;
  readonly publisher: Pick<MessagePublisher, 'schedule'>;
  readonly topology: Pick<TopologyAsserter, 'unsafeToLook' | 'broker'>;
}

export type DeadQueueName = 'dead' | 'unroutable';

export interface ReplayFilter {
  /** Replay at most this many. */
  readonly limit?: number;
  /** Only messages of this lane. */
  readonly lane?: string;
  /** Only the message with this id. */
  readonly id?: string;
  /** Only messages with one of these ids (the console's selection). */
  readonly ids?: ReadonlySet<string>;
  /**
   * Look at no more than this many messages from the head (the console's bound on the work
   * one click may do); the rest is not read at all. @defaultValue the whole queue
   */
  readonly scanLimit?: number;
}

/** What `peek` looked at. */
export interface PeekResult {
  /** Messages fetched (and handed back). */
  readonly scanned: number;
  /** The queue's depth when the look began. */
  readonly total: number;
}

export interface ReplayResult {
  readonly replayed: number;
  /** Looked at and left in place: not matching the filter, or for a lane this config does not know. */
  readonly skipped: number;
  /** What the queue still holds of what it held at the start: its depth then, less what was replayed. */
  readonly left: number;
  readonly unknownLanes: readonly string[];
  /** Bundles that did not decode: left in place (`orbit dlq list` shows them; purge removes them). */
  readonly badBundles: number;
}

/** Whether a dead message is one `filter` selects: its id, one of its ids, its lane (each when given). */
export function matchesFilter(msg: Message, filter: Pick<ReplayFilter, 'id' | 'ids' | 'lane'>): boolean {
  const id: unknown = msg.properties.messageId;
  if (filter.id !== undefined && id !== filter.id) return false;
  if (filter.ids !== undefined && !(typeof id === 'string' && filter.ids.has(id))) return false;
  return filter.lane === undefined || laneOf(headersOf(msg)) === filter.lane;
}

/**
 * Inspecting, replaying and purging `<ns>.dead` and `<ns>.unroutable`.
 *
 * Looking never loses or reorders: messages are fetched unacked and handed back in order
 * (`amqp/hand-back.ts`: a quorum queue reorders what a closing channel returns); on a
 * quorum queue a hand-back counts as a delivery, which orbit's delivery limit makes
 * harmless — a queue without it is refused, see `refuseUnsafe`.
 * Replaying acks a dead copy only after its republish was confirmed.
 */
export class DeadLetterQueue {
  private readonly lanes: ReadonlyMap<string, LaneConfig>;

  constructor(
    private readonly session: DeadLetterAccess,
    lanes: readonly LaneConfig[],
  ) {
    this.lanes = new Map(lanes.map((l) => [l.name, l]));
  }

  queueName(which: DeadQueueName): string {
    const n = names(this.session.namespace);
    return which === 'dead' ? n.dead : n.unroutable;
  }

  async count(which: DeadQueueName): Promise<number> {
    return this.withChannel(async (ch) => (await ch.checkQueue(this.queueName(which))).messageCount);
  }

  /** The first `limit` messages, in queue order, left exactly where they were. */
  async list(which: DeadQueueName, limit: number, now = Date.now()): Promise<DeadMessageView[]> {
    const views: DeadMessageView[] = [];
    await this.peek(which, limit, (msg) => void views.push(describeDeadMessage(msg.content, msg.properties, now)));
    return views;
  }

  /**
   * Sends matching messages back to their lanes, due now, with the attempt count reset
   * (runs kept); a bundle (an unroutable one: a rung dead-letters bundles whole) as each of
   * its messages. Each dead copy is acked only once its republish is confirmed; everything
   * else, a bundle that does not decode included, goes back where it was.
   */
  async replay(which: DeadQueueName, filter: ReplayFilter = {}): Promise<ReplayResult> {
    let badBundles = 0;
    const r = await this.sweep(which, filter, async (msg, lane) => {
      const laneConfig = this.lanes.get(lane)!;
      let copies: OutgoingMessage[];
      try {
        copies = movedMessages(msg, laneConfig, Date.now());
      } catch (err) {
        if (!(err instanceof BadBodyError)) throw err;
        badBundles++;
        return false;
      }
      await Promise.all(copies.map((m) => this.session.publisher.schedule(m, 'publish')));
      return true;
    });
    return { replayed: r.taken, skipped: r.skipped + badBundles, left: r.left, unknownLanes: r.unknownLanes, badBundles };
  }

  /**
   * Deletes the messages matching `filter` (lane and id, as for replay) and hands the rest
   * back in place; a filter of neither is `purge`. Returns how many were deleted. Messages of
   * lanes this config does not know are matched by lane name like any other.
   */
  async purgeMatching(which: DeadQueueName, filter: ReplayFilter): Promise<{ purged: number; left: number; scanned: number }> {
    const r = await this.sweep(which, filter, async () => true, { anyLane: true });
    return { purged: r.taken, left: r.left, scanned: r.scanned };
  }

  /**
   * Looks at up to `max` messages from the head, in queue order, and hands every one back
   * where it was: `visit` sees each (return false to stop early). One channel, one pass.
   */
  async peek(which: DeadQueueName, max: number, visit: (msg: Message, index: number) => boolean | void): Promise<PeekResult> {
    this.refuseUnsafe(which);
    const queue = this.queueName(which);
    return this.withChannel(async (ch) => {
      const depth = (await ch.checkQueue(queue)).messageCount;
      const held: Message[] = [];
      const walk = await walkHead(ch, queue, Math.min(max, depth), (msg, index) => {
        held.push(msg);
        return visit(msg, index);
      });
      await handBack(ch, queue, [...held, ...walk.unvisited]);
      return { scanned: walk.visited, total: depth };
    });
  }

  /**
   * One pass over what the queue held at the start (or its first `scanLimit`): each message
   * matching the filter is handed to `take` and acked once that resolves true; everything
   * else (and what `take` declines: false) goes back to its place.
   */
  private async sweep(
    which: DeadQueueName,
    filter: ReplayFilter,
    take: (msg: Message, lane: string) => Promise<boolean>,
    options: { anyLane?: boolean } = {},
  ): Promise<{ taken: number; skipped: number; left: number; scanned: number; unknownLanes: string[] }> {
    this.refuseUnsafe(which);
    const queue = this.queueName(which);
    return this.withChannel(async (ch) => {
      const total = (await ch.checkQueue(queue)).messageCount;
      const limit = filter.limit ?? Infinity;
      const end = limit <= 0 ? 0 : Math.min(total, filter.scanLimit ?? Infinity);
      let taken = 0;
      let skipped = 0;
      const unknown = new Set<string>();
      const held: Message[] = [];
      // One pass over what was there at the start; what is not taken goes back at the end.
      const walk = await walkHead(ch, queue, end, async (msg) => {
        const lane = laneOf(headersOf(msg));
        if (!matchesFilter(msg, filter)) {
          held.push(msg);
          skipped++;
        } else if (!options.anyLane && (lane === null || !this.lanes.has(lane))) {
          unknown.add(lane ?? '(none)');
          held.push(msg);
          skipped++;
        } else if (await take(msg, lane ?? '')) {
          ch.ack(msg);
          taken++;
        } else {
          held.push(msg);
        }
        return taken < limit;
      });
      await handBack(ch, queue, [...held, ...walk.unvisited]);
      return { taken, skipped, left: total - taken, scanned: walk.visited, unknownLanes: [...unknown] };
    });
  }

  /** Empties the queue; returns how many messages were removed. */
  async purge(which: DeadQueueName): Promise<number> {
    return this.withChannel(async (ch) => (await ch.purgeQueue(this.queueName(which))).messageCount);
  }

  /**
   * Looking hands messages back, which a quorum queue counts as a delivery: without orbit's
   * delivery limit (declared by an older orbit, on 4.x) the 20th look would drop them.
   */
  private refuseUnsafe(which: DeadQueueName): void {
    const queue = this.queueName(which);
    if (!this.session.topology.unsafeToLook(queue)) return;
    throw new BrokerError(
      `dlq: ${queue} is a quorum queue without orbit's delivery limit (declared by an older orbit or broker), so RabbitMQ ` +
        `${this.session.topology.broker?.version ?? '4.x'} would drop a dead letter looked at 20 times; run \`orbit migrate\` first (it loses nothing)`,
      { code: 'QUEUE_NEEDS_MIGRATION' },
    );
  }

  private async withChannel<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    try {
      return await this.session.withChannel('dlq', fn);
    } catch (err) {
      if (err instanceof OrbitError) throw err;
      throw new BrokerError(`dlq: ${errorMessage(err)}`, { cause: err });
    }
  }
}
