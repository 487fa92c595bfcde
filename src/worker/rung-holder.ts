import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel, ConsumeMessage } from 'amqplib';
import { ManagedChannel } from '../amqp/managed-channel';
import type { KnownRung } from '../amqp/rung-declarer';
import { UNANSWERED, answeredWithin } from '../amqp/within';
import { errnoCode, errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import { BUNDLE_HEADER, bundleVersion, decodeBundle, logicalCount } from '../message/bundle';
import { HEADER, headersOf, readState } from '../message/headers';
import type { LaneWorker } from './lane-worker';
import type { WorkerObserver } from './observer';
import { sendOnThenAck } from './send-on';

export interface RungHolderOptions {
  readonly connection: AmqpConnectionManager;
  readonly workers: readonly LaneWorker[];
  /**
   * The rungs known to exist, shortest TTL first (`RungDeclarer`); `gone` forgets one the
   * broker deleted; `onNewRung` tells of each new one (else they are found every `SCAN_MS`).
   */
  readonly rungs: { knownRungs(): readonly KnownRung[]; gone(queue: string): void; onNewRung?(listener: () => void): void };
  /** Rungs whose TTL is at most this are consumed (`delay.holdMs`). */
  readonly horizonMs: number;
  /**
   * Sends a held message on, resolving once confirmed (`MessagePublisher.forward`): to its
   * lane when due, or to the rung for the rest of its delay. For a lane not served here, and
   * for what is still held when the daemon stops.
   */
  readonly forward: (msg: ConsumeMessage) => Promise<void>;
  readonly logger: Logger;
  /** Told of every delivery handed to a lane (`orbit_held_total`). */
  readonly observer?: Pick<WorkerObserver, 'heldRun'>;
}

/**
 * Deliveries each rung consumer holds at most. Bounds memory (this × the rungs up to the
 * horizon) and what a crash hands back. A raw loop held 20,
 * 50 and 200 per rung at 1.04, 1.12 and 1.23–1.39 × the broker's floor (docs/BENCHMARKS.md,
 * session 30): the rate needs few, as a rung's head is due by the time the one before it ran.
 */
export const HOLD_PREFETCH = 50;

/** How often known rungs are looked through for new ones, besides `onNewRung` and each new channel. */
const SCAN_MS = 1000;

/** One held delivery: its rung, the channel it came on, when it runs, and its timer until then. */
interface Held {
  readonly msg: ConsumeMessage;
  readonly queue: string;
  readonly channel: Channel;
  readonly runAt: number;
  timer: NodeJS.Timeout | undefined;
}

/** A held delivery handed to work-ahead: the lane runs it early and acks it on `source`. */
export interface HeldEarly {
  readonly msg: ConsumeMessage;
  readonly channel: Channel;
  readonly source: ManagedChannel<Channel>;
  /** How long before its due time it is handed over (≥ 0). */
  readonly leadMs: number;
}

/**
 * Holds the short rungs (DESIGN.md, "Precision"; docs/BENCHMARKS.md, "Consuming the short
 * rungs"). Every rung has one TTL, so its queue is in due order. A consumer on each rung up
 * to `horizonMs` gets its messages in that order, holds each, unacked, until the due time it
 * carries (a bundle: its latest entry's), and hands it to its lane's worker, which runs it and
 * acks it on this channel once its replacement is confirmed. A held message never expires,
 * is never dead-lettered and never passes through the lane: one queue pass per run instead
 * of two. What the consumers have no room for stays in its rung and expires into the lane.
 *
 * - Never early: a message is handed on at its due time at the earliest. Never held longer
 *   than its rung's TTL from its delivery (a hop of a long delay, a clock gone wrong): a held
 *   delivery must not reach the broker's `consumer_timeout`.
 * - Nothing lost: a held message is an unacked delivery. A crash or a lost channel returns it
 *   to its rung, which expires it into the lane. A stop sends each held message on for the
 *   rest of its delay (`forward`) and acks it once confirmed: a message returned to a 3.10
 *   quorum queue goes behind the others and would expire up to a TTL late.
 * - A message of a lane not served here is sent on to its lane when due.
 */
export class RungHolder {
  private readonly channel: ManagedChannel<Channel>;
  private readonly byLane = new Map<string, LaneWorker>();
  /** The rungs consumed on the current channel (a consume under way counts). */
  private readonly consuming = new Set<string>();
  private readonly held = new Set<Held>();
  private timer: NodeJS.Timeout | undefined;
  private scanning = false;
  /** A rung became known while a scan ran: scan again when it ends. */
  private rescan = false;
  private stopped = false;

  constructor(private readonly o: RungHolderOptions) {
    for (const w of o.workers) this.byLane.set(w.lane.name, w);
    this.channel = new ManagedChannel<Channel>(o.connection, { name: 'rung-holder', confirm: false, setup: (ch) => this.setup(ch) }, o.logger);
    // The broker returns what the channel held; their timers must not hand them on.
    this.channel.on('lost', () => {
      this.consuming.clear();
      this.dropHeld();
    });
  }

  /** Starts looking for rungs to consume (the channel's setup consumes those known already). */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.scan(), SCAN_MS);
    this.timer.unref();
    this.o.rungs.onNewRung?.(() => void this.scan());
  }

  /**
   * Stops taking: cancels the consumers, then sends every message still held on for the rest
   * of its delay and acks it once confirmed (one not confirmed within `timeoutMs` is left to
   * the channel's close, which returns it to its rung). Messages handed to a lane run on.
   */
  async stopTaking(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    const ch = this.channel.current();
    if (ch) {
      const cancel = (async () => {
        for (const queue of [...this.consuming]) await ch.cancel(consumerTagOf(queue)).catch(() => undefined);
      })();
      if ((await answeredWithin(cancel, timeoutMs)) === UNANSWERED) this.o.logger.warn({ ms: timeoutMs }, 'rung holder: consumer cancels not answered in time');
    }
    const sent = [...this.held].map((h) => {
      clearTimeout(h.timer);
      this.held.delete(h);
      return this.sendOn(h);
    });
    if ((await answeredWithin(Promise.all(sent), timeoutMs)) === UNANSWERED) this.o.logger.warn({ ms: timeoutMs }, 'rung holder: held messages not all sent on in time; the rest go back to their rungs');
  }

  /** Closes the channel: anything still unacked goes back to its rung. After the lanes drained. */
  close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.dropHeld();
    return this.channel.close();
  }

  private async setup(ch: Channel): Promise<void> {
    await ch.prefetch(HOLD_PREFETCH, false);
    this.consuming.clear();
    await this.consumeNew(ch);
  }

  private async scan(): Promise<void> {
    const ch = this.channel.current();
    if (!ch || this.stopped) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = true;
    try {
      do {
        this.rescan = false;
        await this.consumeNew(ch);
      } while (this.rescan && this.channel.isCurrent(ch) && !this.stopped);
    } catch (err) {
      this.o.logger.warn({ err: errorMessage(err) }, 'rung holder: consuming a rung failed; the next channel tries again');
    } finally {
      this.scanning = false;
    }
  }

  /** Consumes every known rung up to the horizon not consumed yet. A missing one (deleted once unused) is forgotten. */
  private async consumeNew(ch: Channel): Promise<void> {
    for (const rung of this.o.rungs.knownRungs()) {
      if (rung.ttlMs > this.o.horizonMs) break;
      if (this.consuming.has(rung.queue) || this.stopped) continue;
      this.consuming.add(rung.queue);
      try {
        await ch.consume(rung.queue, (msg) => this.received(rung, ch, msg), { noAck: false, consumerTag: consumerTagOf(rung.queue) });
      } catch (err) {
        // (A channel that is gone already: its successor's setup has started its own set.)
        if (this.channel.isCurrent(ch)) this.consuming.delete(rung.queue);
        // The broker closed the channel with it; the next one consumes the rest.
        if (errnoCode(err) === 404) this.o.rungs.gone(rung.queue);
        throw err;
      }
    }
  }

  private received(rung: KnownRung, ch: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer: the rung was deleted.
      this.consuming.delete(rung.queue);
      this.o.rungs.gone(rung.queue);
      return;
    }
    const now = Date.now();
    const runAt = Math.min(dueOf(msg, now), now + rung.ttlMs);
    const held: Held = { msg, queue: rung.queue, channel: ch, runAt, timer: undefined };
    if (runAt <= now) return this.handOn(held);
    this.held.add(held);
    this.wakeAt(held, runAt);
  }

  /**
   * Work-ahead on a held rung (`worker/work-ahead.ts`): the soonest-due message held from
   * `queue` for `lane`, if it is due within `maxAdvanceMs`, taken out of the holder's hands
   * (its timer stopped) for the lane to run early. Without this an idle lane would take later
   * work from the broker while the soonest-due waited here. Deliveries of one rung arrive in
   * due order and the set keeps that order, so the first match is the rung's soonest for the lane.
   */
  takeEarly(queue: string, lane: string, maxAdvanceMs: number): HeldEarly | undefined {
    if (this.stopped || !this.byLane.has(lane)) return undefined;
    for (const held of this.held) {
      if (held.queue !== queue || laneOf(held.msg) !== lane) continue;
      const leadMs = held.runAt - Date.now();
      if (leadMs > maxAdvanceMs || !this.channel.isCurrent(held.channel)) return undefined;
      clearTimeout(held.timer);
      this.held.delete(held);
      return { msg: held.msg, channel: held.channel, source: this.channel, leadMs: Math.max(0, leadMs) };
    }
    return undefined;
  }

  /**
   * Hands `held` on at `runAt`, by the wall clock its due time is read against. A timer can
   * fire a millisecond before `Date.now()` reaches its target (timers run on a monotonic
   * clock, rounded to whole milliseconds), and a held message must never run early: it
   * waits again for what is left.
   */
  private wakeAt(held: Held, runAt: number): void {
    held.timer = setTimeout(() => {
      if (Date.now() < runAt) return this.wakeAt(held, runAt);
      this.held.delete(held);
      this.handOn(held);
    }, Math.max(1, runAt - Date.now()));
  }

  /** Due: to its lane's worker, or (a lane not served here) sent on to its lane. */
  private handOn(held: Held): void {
    if (!this.channel.isCurrent(held.channel)) return;
    const worker = this.byLane.get(laneOf(held.msg) ?? '');
    if (!worker) return void this.sendOn(held);
    this.o.observer?.heldRun?.(worker.lane.name, logicalCount(held.msg));
    worker.runHeld(held.msg, held.channel, this.channel);
  }

  /** Sends a held message on and acks it once confirmed; on failure it is handed back (late, never lost). */
  private sendOn(held: Held): Promise<void> {
    return sendOnThenAck(this.o.forward, held.msg, held.channel, this.channel, (err) =>
      this.o.logger.warn({ err: errorMessage(err) }, 'rung holder could not send a held message on; handed back to its rung'),
    );
  }

  private dropHeld(): void {
    for (const h of this.held) clearTimeout(h.timer);
    this.held.clear();
  }
}

/** A consumer tag naming its rung: `cancel` needs the tag, and the broker's list shows what it consumes. */
function consumerTagOf(queue: string): string {
  return `orbit-hold:${queue}`;
}

/**
 * When a held delivery may run: its due time, or a bundle's latest entry's (the bundle's own
 * header carries its earliest). Unreadable: now (the lane reports a bad body as it would).
 */
export function dueOf(msg: Pick<ConsumeMessage, 'content' | 'properties'>, now: number): number {
  try {
    const headers = headersOf(msg);
    const version = headers[BUNDLE_HEADER];
    if (version === undefined) return readState(headers, now).dueAt;
    if (bundleVersion(version) === undefined) return now;
    let latest = -Infinity;
    for (const e of decodeBundle(msg.content, version)) if (e.dueAt > latest) latest = e.dueAt;
    return Number.isFinite(latest) ? latest : now;
  } catch {
    return now;
  }
}

/** The lane a held delivery belongs to: its state header (plain messages and bundles carry it). */
function laneOf(msg: Pick<ConsumeMessage, 'properties'>): string | undefined {
  const lane = headersOf(msg)[HEADER.lane];
  return typeof lane === 'string' ? lane : undefined;
}
