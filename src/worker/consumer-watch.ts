import type { AmqpConnectionManager } from 'amqp-connection-manager';
import { probeQueues } from '../amqp/probe-queues';
import { errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import type { WorkerObserver } from './observer';

/**
 * How often the watch looks. A lane is looked into once it has gone half of this without a
 * delivery, and its consumer restarted at the second look that finds it so: about two of these
 * after it stopped getting messages.
 */
export const CONSUMER_WATCH_MS = 5000;

/** What the watch needs of a lane (a `LaneWorker`). */
export interface WatchedLane {
  readonly lane: { readonly name: string };
  /** The queues its consumers consume. */
  readonly queues: readonly string[];
  /**
   * Since when the lane has consumed while holding no delivery of its consumers and getting
   * none (epoch ms): each consumer has its whole prefetch free. Undefined while it holds one,
   * or does not consume (paused, reconnecting, stopping).
   */
  starvedSince(): number | undefined;
  /** Ends the consume channel; a new one consumes again (what it held goes back to the queue). */
  restartConsumer(reason: string): void;
}

/** A lane seen starved with ready messages in its queues: when, and within which stretch. */
export interface StarvedSighting {
  readonly starvedSince: number;
  readonly at: number;
}

/**
 * Pure: what one look at a starved lane means. `ready` lists the lane's queues that hold
 * messages ready for delivery. A consumer with free prefetch gets a ready message within
 * milliseconds, so ready messages seen at two looks (at least half of `intervalMs` apart:
 * two rounds of the watch, whose timer may fire a little early) within one uninterrupted
 * stretch without deliveries mean the broker stopped delivering to it: `restart`. One look is
 * not enough: a message may have become ready just before it, its delivery still on the way.
 */
export function judgeStarvedLane(
  previous: StarvedSighting | undefined,
  starvedSince: number,
  ready: readonly string[],
  now: number,
  intervalMs: number,
): { verdict: 'fine' | 'watch' | 'restart'; sighting?: StarvedSighting } {
  if (ready.length === 0) return { verdict: 'fine' };
  if (previous === undefined || previous.starvedSince !== starvedSince) return { verdict: 'watch', sighting: { starvedSince, at: now } };
  if (now - previous.at < intervalMs / 2) return { verdict: 'watch', sighting: previous };
  return { verdict: 'restart' };
}

export interface ConsumerWatchOptions {
  readonly lanes: readonly WatchedLane[];
  /** The consume connection: the looks are passive declares on channels of their own on it. */
  readonly connection: AmqpConnectionManager;
  readonly logger: Logger;
  readonly observer?: Pick<WorkerObserver, 'consumerRestarted'>;
  /** How long one round of looks may take. */
  readonly probeTimeoutMs: number;
  /** @defaultValue CONSUMER_WATCH_MS */
  readonly intervalMs?: number;
}

/**
 * Restarts a lane consumer the broker stopped delivering to.
 *
 * RabbitMQ can lose track of a consumer's deliveries: after a quorum queue's leader moved
 * (a node of a cluster died), it may count a consumer's whole prefetch as delivered while the
 * client received none of it (rabbitmq-server#15473, open; orbit's cluster fault test most
 * likely met it once on 3.10: 20 messages, the lane's prefetch, unacked for good, 600 ready,
 * none delivered).
 * The consumer then waits for ever for deliveries that never come, and so does its lane,
 * while the broker reports it healthy. Only a new consumer clears it.
 *
 * The sign is one no healthy broker shows: a lane that holds none of its consumers'
 * deliveries (so each has its whole prefetch free) and gets none, while its queue holds
 * messages ready for delivery. Every `intervalMs`, each lane starved for half that has its queues
 * looked at (passive declares: the ready count, nothing read or moved); ready messages at two
 * looks within one stretch without deliveries restart the lane's consumer. As the lane holds
 * nothing, the restart runs nothing twice.
 */
export class ConsumerWatch {
  private readonly intervalMs: number;
  private readonly sightings = new Map<WatchedLane, StarvedSighting>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly o: ConsumerWatchOptions) {
    this.intervalMs = o.intervalMs ?? CONSUMER_WATCH_MS;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round of looks. Exposed for tests. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.look();
    } catch (err) {
      // A lost connection or a queue that does not answer: the next round looks again.
      this.o.logger.debug({ err: errorMessage(err) }, 'consumer watch: the lane queues could not be looked at');
    } finally {
      this.running = false;
    }
  }

  private async look(): Promise<void> {
    const now = Date.now();
    const starved = new Map<WatchedLane, number>();
    for (const lane of this.o.lanes) {
      const since = lane.starvedSince();
      if (since !== undefined && now - since >= this.intervalMs / 2) starved.set(lane, since);
      else this.sightings.delete(lane);
    }
    const model = this.o.connection.connection;
    if (starved.size === 0 || !model) return;
    const counts = await probeQueues(model, [...starved.keys()].flatMap((l) => l.queues), this.o.probeTimeoutMs);
    const at = Date.now();
    for (const [lane, since] of starved) {
      // The lane got a delivery (or stopped consuming) while the queues were looked at: a new stretch, or none.
      if (lane.starvedSince() !== since) continue;
      const ready = lane.queues.filter((q) => (counts.get(q)?.messageCount ?? 0) > 0);
      const { verdict, sighting } = judgeStarvedLane(this.sightings.get(lane), since, ready, at, this.intervalMs);
      if (sighting) this.sightings.set(lane, sighting);
      else this.sightings.delete(lane);
      if (verdict !== 'restart') continue;
      const name = lane.lane.name;
      this.o.logger.warn(
        { lane: name, queues: ready, messages: ready.map((q) => counts.get(q)?.messageCount), starvedMs: at - since },
        'the broker delivers nothing to this lane while its queue holds ready messages and the lane has room (a consumer the broker lost track of?); restarting its consumer',
      );
      this.o.observer?.consumerRestarted?.(name);
      lane.restartConsumer(`no delivery for ${at - since} ms while ${ready.join(', ')} held ready messages`);
    }
  }
}
