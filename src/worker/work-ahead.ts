import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel, GetMessage, Message as AmqpMessage } from 'amqplib';
import { ManagedChannel } from '../amqp/managed-channel';
import { UNANSWERED, answeredWithin } from '../amqp/within';
import { SICK_QUEUE_REST_MS } from '../amqp/sick-queue';
import type { DelayConfig } from '../config/types';
import { formatDuration } from '../config/durations';
import { destinationOf } from '../delay/routing';
import { errnoCode, errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import { logicalCount } from '../message/bundle';
import { headersOf, readState } from '../message/headers';
import { laneOfDestination } from '../naming/partition';
import type { Names } from '../naming/names';
import type { LaneWorker } from './lane-worker';
import type { HeldEarly } from './rung-holder';
import type { WorkerObserver } from './observer';
import { sendOnThenAck } from './send-on';
import { TokenBucket } from './token-bucket';

/** What work-ahead tells the metrics: its hooks of the worker's observer (so a caller's own observer hears them too). */
export type WorkAheadObserver = Pick<WorkerObserver, 'takenEarly' | 'workingAhead'>;

export interface WorkAheadOptions {
  readonly connection: AmqpConnectionManager;
  readonly workers: readonly LaneWorker[];
  readonly names: Names;
  readonly delay: DelayConfig;
  readonly logger: Logger;
  /** Told of every message taken early (by the lane that runs it) and of each lane's episodes. */
  readonly observer?: WorkAheadObserver;
  /**
   * Delay queues not to look into: a fetch handed back is a delivery, and a queue without
   * orbit's delivery limit (a 4.x quorum queue declared by an older orbit) would drop or move
   * a message returned 20 times.
   */
  readonly unsafeToLook?: (queue: string) => boolean;
  /**
   * Sends a copy of a fetched message on for the rest of its delay, resolving once confirmed
   * (`MessagePublisher.forward`). Given, it replaces the hand-back on quorum delay queues.
   */
  readonly forward?: (msg: GetMessage) => Promise<void>;
  /**
   * How long a fetch may wait for the broker's answer (`amqp.publishTimeout`). A queue that
   * does not answer (a quorum rung without a leader holds a `basic.get` unanswered) is left
   * alone for `SICK_QUEUE_REST_MS`, and the channel, which would hold every later call behind
   * that one, is replaced. @defaultValue 30 s
   */
  readonly lookTimeoutMs?: number;
  /**
   * With `delay.hold`: the soonest-due message the rung holder holds from a rung for a lane,
   * within `maxAdvanceMs` (`RungHolder.takeEarly`). Those are taken before the rung's
   * broker-side rest, which falls due after them.
   */
  readonly held?: (queue: string, lane: string, maxAdvanceMs: number) => HeldEarly | undefined;
  /** On the ladder (`delay.tolerance` > 0): the rungs known to exist, shortest TTL first. */
  readonly rungs?: { knownRungs(): ReadonlyArray<{ readonly queue: string }>; gone(queue: string): void };
}

/**
 * Work-ahead (DESIGN.md): when a lane has had free capacity and no delivery for `idleMs`,
 * take messages from the lowest non-empty delay levels — their heads fall due soonest —
 * with `basic.get`, and run them now, marked `early`.
 *
 * - A message due further ahead than `maxAdvance` is handed back with `basic.nack
 *   requeue`, which puts it back at its original position: the level is not reordered.
 *   That level is then left alone for this round (what follows it is not due sooner).
 * - Quorum delay queues do not put a returned message back at its position: RabbitMQ puts
 *   it behind the others, and 3.10 expires it only once it reaches the head again (measured:
 *   a message looked at 1 s into a 3 s queue left it 0.9 s late, after all ten behind it;
 *   4.0 expired it on time). So on quorum delay queues a message work-ahead cannot run is
 *   sent on for the rest of its delay (`forward`: the rest rounded up to its rung, within
 *   the message's bound) and acked once that copy is confirmed. A rung whose head was too
 *   far ahead is not looked into again until that head comes within `maxAdvance`: each
 *   rung has one TTL, so nothing behind its head is due sooner (binary levels are not
 *   FIFO in due time and keep the per-round rule).
 * - A message for another lane runs in that lane if it has a free slot; otherwise it is
 *   handed back (on quorum: sent on) the same way.
 * - At most `maxRate` messages a second per lane, and never more than the lane's free
 *   capacity, so several daemons each take only what they can run.
 * - Any real delivery ends the lane's idleness, and with it the taking.
 * An early message is acked on this module's channel after its outcome is confirmed,
 * exactly like a consumed one.
 *
 * Episodes: work-ahead makes a schedule look wrong to anyone who does not know it runs ("every
 * 5 s" ran 1.5 s apart), so a lane's working ahead is logged at info — once when it starts
 * (its first message taken early) and once when it stops (nothing taken early for six idle
 * periods, `quietMs`), with how many it ran early and how far ahead of their due times — and
 * shown by the `orbit_work_ahead_active` gauge. The quiet period keeps a lane that finds a
 * message now and then from logging a pair of lines for each. Each fetch is logged at debug.
 */
export class WorkAhead {
  private readonly channel: ManagedChannel<Channel>;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly byLane = new Map<string, LaneWorker>();
  /** A round that found nothing to take rests the lane for `idleMs`: no get/nack churn. */
  private readonly restUntil = new Map<string, number>();
  /** Lanes working ahead now (see "Episodes"), by the lane that runs the early messages. */
  private readonly episodes = new Map<string, Episode>();
  /** Quorum ladder: the due time of each rung's head when it was found too far ahead to run. */
  private readonly headDueAt = new Map<string, number>();
  /** Delay queues whose last fetch went unanswered, and until when they are left alone. */
  private readonly sickUntil = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;

  constructor(private readonly o: WorkAheadOptions) {
    this.channel = new ManagedChannel<Channel>(o.connection, { name: 'work-ahead', confirm: false, setup: async () => {} }, o.logger);
    for (const w of o.workers) {
      this.byLane.set(w.lane.name, w);
      const rate = w.lane.workAhead.maxRate;
      // A burst of one second's worth at most, so the rate holds over any window.
      this.buckets.set(w.lane.name, new TokenBucket(rate, Math.max(1, rate)));
    }
  }

  /** True when at least one lane has work-ahead on. */
  get enabled(): boolean {
    return this.o.workers.some((w) => w.lane.workAhead.enabled);
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    const shortestIdle = Math.min(...this.o.workers.filter((w) => w.lane.workAhead.enabled).map((w) => w.lane.workAhead.idleMs));
    const interval = Math.max(50, Math.min(250, Math.floor(shortestIdle / 2)));
    this.timer = setInterval(() => void this.tick(), interval);
    this.timer.unref();
  }

  /** Stops taking; messages already taken run and settle through their lanes. */
  stopTaking(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const lane of [...this.episodes.keys()]) this.endEpisode(lane, 'the daemon is stopping');
  }

  /** Closes the channel: unacked early messages (if any) go back to their levels. */
  close(): Promise<void> {
    this.stopTaking();
    return this.channel.close();
  }

  /** One round: fill every idle lane. Exposed for tests. */
  async tick(): Promise<void> {
    if (this.running || this.stopped) return;
    const ch = this.channel.current();
    if (!ch) return;
    this.running = true;
    try {
      for (const worker of this.o.workers) {
        const lane = worker.lane.name;
        this.endEpisodeIfQuiet(worker);
        if ((this.restUntil.get(lane) ?? 0) > Date.now() || !this.isIdle(worker)) continue;
        const taken = await this.fill(worker, ch);
        if (taken === 0) this.restUntil.set(lane, Date.now() + worker.lane.workAhead.idleMs);
      }
    } catch (err) {
      this.o.logger.warn({ err: errorMessage(err) }, 'work-ahead round failed');
    } finally {
      this.running = false;
    }
  }

  private isIdle(worker: LaneWorker): boolean {
    const wa = worker.lane.workAhead;
    return wa.enabled && !this.stopped && worker.capacity > 0 && worker.idleFor() >= wa.idleMs;
  }

  /**
   * The delay queues, soonest due first: the binary levels from the lowest, or the ladder's
   * rungs known to exist from the shortest (a rung's head falls due within its TTL). Only
   * queues that exist: a fetch from a missing one would close the channel.
   */
  private delayQueues(): string[] {
    if (this.o.delay.tolerance > 0) return (this.o.rungs?.knownRungs() ?? []).map((r) => r.queue);
    return Array.from({ length: this.o.delay.levels }, (_, level) => this.o.names.delayLevel(level));
  }

  /** Takes what the lane can run now; returns how many messages were taken. */
  private async fill(worker: LaneWorker, ch: Channel): Promise<number> {
    let taken = 0;
    const bucket = this.buckets.get(worker.lane.name)!;
    const maxAdvance = worker.lane.workAhead.maxAdvanceMs;
    const forwarding = this.forwarding();
    for (const queue of this.delayQueues()) {
      if (this.o.unsafeToLook?.(queue) || (this.sickUntil.get(queue) ?? 0) > Date.now()) continue;
      taken += this.takeHeld(worker, queue, bucket, maxAdvance);
      if (forwarding && (this.headDueAt.get(queue) ?? -Infinity) - maxAdvance > Date.now()) continue;
      // Take from this level while the lane stays idle and the rate allows.
      while (this.isIdle(worker) && bucket.available() > 0 && this.channel.isCurrent(ch)) {
        const msg = await this.fetch(ch, queue);
        if (msg === UNANSWERED) return taken;
        if (!msg) break;
        const early = this.earlyTarget(msg, maxAdvance);
        if (!early.target) {
          if (forwarding) await this.sendOn(msg, ch, queue, early.dueAt, maxAdvance);
          else ch.nack(msg, false, true);
          break;
        }
        this.runEarly(early.target, bucket, queue, msg, ch, this.channel, early.leadMs);
        taken++;
      }
      if (!this.isIdle(worker) || bucket.available() === 0) break;
    }
    return taken;
  }

  /** Runs early what the rung holder holds from `queue` for the lane (see `held`); returns how many it took. */
  private takeHeld(worker: LaneWorker, queue: string, bucket: TokenBucket, maxAdvance: number): number {
    let taken = 0;
    while (this.o.held && this.isIdle(worker) && bucket.available() > 0) {
      const held = this.o.held(queue, worker.lane.name, maxAdvance);
      if (!held) break;
      this.runEarly(worker, bucket, queue, held.msg, held.channel, held.source, held.leadMs);
      taken++;
    }
    return taken;
  }

  /** Runs `msg`, taken from `queue` `leadMs` before it is due, early in `worker`'s lane, at one token of its rate. */
  private runEarly(worker: LaneWorker, bucket: TokenBucket, queue: string, msg: AmqpMessage, ch: Channel, source: ManagedChannel<Channel>, leadMs: number): void {
    bucket.tryTake();
    worker.runEarly(msg, ch, source);
    this.noteTaken(worker.lane.name, queue, logicalCount(msg), leadMs);
  }

  /**
   * One `basic.get`, bounded by `lookTimeoutMs`. Unanswered: the queue rests, the channel is
   * abandoned (a message the broker hands out on it later goes back when the broker ends it).
   */
  private async fetch(ch: Channel, queue: string): Promise<GetMessage | false | typeof UNANSWERED> {
    const ms = this.o.lookTimeoutMs ?? 30_000;
    let got: GetMessage | false | typeof UNANSWERED;
    try {
      got = await answeredWithin(ch.get(queue, { noAck: false }), ms);
    } catch (err) {
      // A rung the broker deleted after it stayed unused (x-expires): forget it.
      if (errnoCode(err) === 404) this.o.rungs?.gone(queue);
      throw err;
    }
    if (got === UNANSWERED) {
      this.sickUntil.set(queue, Date.now() + SICK_QUEUE_REST_MS);
      this.o.logger.warn({ queue, ms, restMs: SICK_QUEUE_REST_MS }, 'delay queue did not answer a fetch (a quorum queue without a leader?); work-ahead leaves it alone for a while');
      this.channel.abandon(ch, `a fetch from ${queue} went unanswered`);
    }
    return got;
  }

  /** Quorum delay queues with a way to forward (see the class comment): send on rather than hand back. */
  private forwarding(): boolean {
    return this.o.delay.queueType === 'quorum' && this.o.forward !== undefined;
  }

  /**
   * A message work-ahead cannot run, fetched from a quorum delay queue: its copy goes on for
   * the rest of its delay, and it is acked once that is confirmed (handed back if that fails:
   * late, never lost). A rung's head too far ahead marks the rung until it comes within reach.
   */
  private async sendOn(msg: GetMessage, ch: Channel, queue: string, dueAt: number | undefined, maxAdvance: number): Promise<void> {
    if (this.o.delay.tolerance > 0 && dueAt !== undefined && dueAt - Date.now() > maxAdvance) this.headDueAt.set(queue, dueAt);
    await sendOnThenAck(this.o.forward!, msg, ch, this.channel, (err) =>
      this.o.logger.warn({ queue, err: errorMessage(err) }, 'work-ahead could not send a fetched message on; handed back'),
    );
  }

  private noteTaken(lane: string, queue: string, messages: number, leadMs: number): void {
    this.o.observer?.takenEarly?.(lane, messages);
    this.o.logger.debug({ lane, queue, messages, leadMs }, 'work-ahead took a message early');
    const now = Date.now();
    const episode = this.episodes.get(lane);
    if (episode) {
      episode.messages += messages;
      episode.minLeadMs = Math.min(episode.minLeadMs, leadMs);
      episode.maxLeadMs = Math.max(episode.maxLeadMs, leadMs);
      episode.lastTakenAt = now;
      return;
    }
    this.episodes.set(lane, { startedAt: now, lastTakenAt: now, messages, minLeadMs: leadMs, maxLeadMs: leadMs });
    this.o.observer?.workingAhead?.(lane, true);
    const wa = this.byLane.get(lane)?.lane.workAhead;
    this.o.logger.info(
      { lane, leadMs, maxAdvanceMs: wa?.maxAdvanceMs, idleMs: wa?.idleMs },
      `lane ${lane} is idle: working ahead, running messages before they are due ` +
        `(the first ${shown(leadMs)} early; up to ${wa ? shown(wa.maxAdvanceMs) : '?'} early, flagged message.early)`,
    );
  }

  /** Ends the lane's episode once it has taken nothing for `quietMs`. */
  private endEpisodeIfQuiet(worker: LaneWorker): void {
    const lane = worker.lane.name;
    const episode = this.episodes.get(lane);
    if (!episode || Date.now() - episode.lastTakenAt < quietMs(worker.lane.workAhead.idleMs)) return;
    // Early messages never count as deliveries, so a lane with room that is not idle has had real work.
    const busy = worker.capacity > 0 && worker.idleFor() < worker.lane.workAhead.idleMs;
    this.endEpisode(lane, busy ? 'the lane has real work, or is paused' : `nothing due within ${shown(worker.lane.workAhead.maxAdvanceMs)}`);
  }

  private endEpisode(lane: string, reason: string): void {
    const episode = this.episodes.get(lane);
    if (!episode) return;
    this.episodes.delete(lane);
    this.o.observer?.workingAhead?.(lane, false);
    const { messages, minLeadMs, maxLeadMs } = episode;
    const forMs = episode.lastTakenAt - episode.startedAt;
    this.o.logger.info(
      { lane, messages, minLeadMs, maxLeadMs, forMs, reason },
      `lane ${lane} stopped working ahead (${reason}): ran ${messages} message${messages === 1 ? '' : 's'} early ` +
        `over ${shown(forMs)}, ${shown(minLeadMs)} to ${shown(maxLeadMs)} before they were due`,
    );
  }

  /**
   * The lane to run a fetched message in now, how far ahead of its due time, and that due
   * time; no lane to hand it back (too far ahead, a lane not served here or full, unreadable).
   * Never throws: a message fetched and neither handed back nor run would sit unacked on this
   * long-lived channel, where it neither expires (a checked-out message has no TTL) nor runs
   * until the channel closes.
   */
  private earlyTarget(msg: GetMessage, maxAdvance: number): { target?: LaneWorker; leadMs: number; dueAt?: number } {
    try {
      const now = Date.now();
      const state = readState(headersOf(msg), now);
      const lane = state.lane ?? laneOfDestination(destinationOf(msg.fields.routingKey, this.o.delay.levels));
      const target = this.byLane.get(lane);
      const leadMs = state.dueAt - now;
      if (leadMs > maxAdvance || !target || target.capacity === 0) return { leadMs, dueAt: state.dueAt };
      return { target, leadMs: Math.max(0, leadMs), dueAt: state.dueAt };
    } catch (err) {
      this.o.logger.warn({ err: errorMessage(err) }, 'work-ahead could not read a fetched message; handed back');
      return { leadMs: 0 };
    }
  }
}

/** A lane's current run of working ahead. */
interface Episode {
  readonly startedAt: number;
  lastTakenAt: number;
  /** Logical messages taken early so far. */
  messages: number;
  minLeadMs: number;
  maxLeadMs: number;
}

/**
 * How long a lane takes nothing early before its episode ends: six of its idle periods (30 s
 * at the default `idle` of 5 s), at least 1 s. Long enough that a lane finding a message every
 * few rounds stays in one episode; scaled by `idle`, which says how quickly this lane reacts.
 */
function quietMs(idleMs: number): number {
  return Math.max(1000, 6 * idleMs);
}

/** A duration for a log line, as precise as a reader needs: 187ms, 4s800ms, 4m59s. */
function shown(ms: number): string {
  const step = ms < 1000 ? 1 : ms < 60_000 ? 100 : 1000;
  return formatDuration(Math.round(ms / step) * step);
}
