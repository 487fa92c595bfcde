import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel, GetMessage } from 'amqplib';
import { ManagedChannel } from '../amqp/managed-channel';
import type { DelayConfig } from '../config/types';
import { destinationOf } from '../delay/routing';
import { errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import { readState, type Headers } from '../message/headers';
import { laneOfDestination } from '../publish/partition';
import type { Names } from '../topology/names';
import type { LaneWorker } from './lane-worker';
import { TokenBucket } from './token-bucket';

export interface WorkAheadOptions {
  readonly connection: AmqpConnectionManager;
  readonly workers: readonly LaneWorker[];
  readonly names: Names;
  readonly delay: DelayConfig;
  readonly logger: Logger;
  /** Told of every message taken early, by the lane that runs it. */
  readonly onTaken?: (lane: string) => void;
  /**
   * Delay queues not to look into: a fetch handed back is a delivery, and a queue without
   * orbit's delivery limit (a 4.x quorum queue declared by an older orbit) would drop or move
   * a message returned 20 times.
   */
  readonly unsafeToLook?: (queue: string) => boolean;
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
 * - A message for another lane runs in that lane if it has a free slot; otherwise it is
 *   handed back the same way.
 * - At most `maxRate` messages a second per lane, and never more than the lane's free
 *   capacity, so several daemons each take only what they can run.
 * - Any real delivery ends the lane's idleness, and with it the taking.
 * An early message is acked on this module's channel after its outcome is confirmed,
 * exactly like a consumed one.
 */
export class WorkAhead {
  private readonly channel: ManagedChannel<Channel>;
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly byLane = new Map<string, LaneWorker>();
  /** A round that found nothing to take rests the lane for `idleMs`: no get/nack churn. */
  private readonly restUntil = new Map<string, number>();
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
    for (const queue of this.delayQueues()) {
      if (this.o.unsafeToLook?.(queue)) continue;
      // Take from this level while the lane stays idle and the rate allows.
      while (this.isIdle(worker) && bucket.available() > 0 && this.channel.isCurrent(ch)) {
        let msg: Awaited<ReturnType<Channel['get']>>;
        try {
          msg = await ch.get(queue, { noAck: false });
        } catch (err) {
          // A rung the broker deleted after it stayed unused (x-expires): forget it.
          if ((err as { code?: unknown }).code === 404) this.o.rungs?.gone(queue);
          throw err;
        }
        if (!msg) break;
        const target = this.earlyTarget(msg, maxAdvance);
        if (!target) {
          ch.nack(msg, false, true);
          break;
        }
        bucket.tryTake();
        taken++;
        target.runEarly(msg, ch, this.channel);
        this.o.onTaken?.(target.lane.name);
      }
      if (!this.isIdle(worker) || bucket.available() === 0) break;
    }
    return taken;
  }

  /**
   * The lane to run a fetched message in now, or undefined to hand it back. Never throws: a
   * message fetched and neither handed back nor run would sit unacked on this long-lived
   * channel, where it neither expires (a checked-out message has no TTL) nor runs until the
   * channel closes.
   */
  private earlyTarget(msg: GetMessage, maxAdvance: number): LaneWorker | undefined {
    try {
      const now = Date.now();
      const state = readState((msg.properties.headers ?? {}) as Headers, now);
      const lane = state.lane ?? laneOfDestination(destinationOf(msg.fields.routingKey, this.o.delay.levels));
      const target = this.byLane.get(lane);
      return state.dueAt - now > maxAdvance || !target || target.capacity === 0 ? undefined : target;
    } catch (err) {
      this.o.logger.warn({ err: errorMessage(err) }, 'work-ahead could not read a fetched message; handed back');
      return undefined;
    }
  }
}
