import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel, ChannelModel, Message as AmqpMessage } from 'amqplib';
import type { DelayConfig, LaneConfig } from '../config/types';
import { CHANNEL_CLOSE_TIMEOUT_MS, ManagedChannel } from '../amqp/managed-channel';
import { UNANSWERED, answeredWithin } from '../amqp/within';
import { errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import type { Tombstones } from '../message/tombstones';
import type { MessagePublisher } from '../publish/message-publisher';
import { decideOutcome, type HandlerResult, type Settlement } from './decide-outcome';
import { DeliverySettler, type Delivery, type SettleHooks, type SettlingDelivery } from './delivery-settler';
import { LaneCapacity } from './lane-capacity';
import type { Handler } from './handler-types';
import { decodeDelivery, type IncomingMessage } from './incoming';
import type { WorkerObserver } from './observer';
import { RateLimiter } from './rate-limiter';
import type { CopyKind, RecentRuns } from './recent-runs';
import { SlotQueue } from './slot-queue';
import { runHandler } from './run-handler';

export interface LaneWorkerOptions {
  readonly lane: LaneConfig;
  /** The lane's queue, or its partitions' queues. */
  readonly queues: readonly string[];
  readonly handler: Handler;
  readonly lanes: ReadonlyMap<string, LaneConfig>;
  readonly delay: DelayConfig;
  readonly connection: AmqpConnectionManager;
  readonly publisher: MessagePublisher;
  /** Told of the ladder rung each delivery came out of (work-ahead looks into the known ones). */
  readonly rungs?: { seen(queue: string): void };
  readonly logger: Logger;
  readonly observer?: WorkerObserver;
  /** The cancels known: a copy they cover is dropped, not run, and a run they cover is not rescheduled. */
  readonly tombstones?: Pick<Tombstones, 'cancels'>;
  /**
   * The runs settled lately (one for all lanes): a delivery of one of them again is a copy
   * (a broker crash forgot its ack), dropped rather than run a second time. @defaultValue none
   */
  readonly recentRuns?: RecentRuns;
  /** Runs on every new consume channel before consuming (topology, on `model`'s channels). */
  readonly setup?: (channel: Channel, model: ChannelModel) => Promise<void>;
  /**
   * The rung holder hands this lane messages (`runHeld`): they queue for handler slots with
   * the lane's own deliveries, so the lane has slots even unbundled (the prefetch alone would
   * not bound what runs, and a held message would wait for a free slot the lane's consumer
   * always takes first).
   */
  readonly holding?: boolean;
}

/**
 * Logical messages a bundled lane on the ladder (`delay.tolerance` > 0) may hold unacked, per
 * consumer: its prefetch is this many divided by `bundle.max` (`ladderBundlePrefetch`). There a
 * replacement may wait in its outgoing bundle for company for up to its tolerance (tens of
 * seconds for a delay of an hour), holding its delivery unacked; the lane must hold enough
 * deliveries for the bundles to fill and for its handlers to stay busy meanwhile. When the
 * prefetch is used up anyway, the lane sends what lingers (`flushWhenStarved`). A crash
 * redelivers at most this many logical messages per lane queue, whatever `bundle.max` is.
 *
 * Why 100,000: replacements bundle per rung, and intervals spread over a day use ~700 rungs
 * at 2 %. With 100 bundles of 100, a backlogged lane held ~4 messages per rung, flushed them
 * for want of prefetch, sent bundles of 2.4 and ran at 1.0 × the plain-queue floor; with
 * 1,000 its bundles went out with 43 and it ran 3.9 × (docs/BENCHMARKS.md, session 8). Why a
 * count of messages rather than of bundles: what a crash repeats and what the client holds
 * (~1 KB a lingering message) follow the messages. And from the same messages held, larger
 * bundles fill better up to a point, as each delivery waits for its slowest replacement:
 * in one run of quick rounds (session 28), 1,000 bundles of 100 ran 9.4 × the floor, 500 of
 * 200 11.6 × and 400 of 250 10.4 ×; on another machine (session 27), 334 of 300 ran 7.6 ×
 * and 100 of 1,000 2.8 ×. Hence `bundle.max` 200 by default (docs/BENCHMARKS.md).
 */
export const LADDER_HELD_MESSAGES = 100_000;

/** The prefetch, in bundles, of a bundled lane on the ladder: `LADDER_HELD_MESSAGES` ÷ `bundle.max`, rounded up. */
export function ladderBundlePrefetch(bundleMax: number): number {
  return Math.ceil(LADDER_HELD_MESSAGES / bundleMax);
}

/**
 * A lane consumer's prefetch (per consumer on every broker: no global QoS, deprecated in 4.0
 * and refused by 4.3). Unbundled: the concurrency. A bundled lane prefetches bundles: enough
 * for the concurrency twice over, so the next bundle is at hand when one finishes, while
 * memory stays bounded by `concurrency`; on the ladder (`tolerance` > 0), at least
 * `LADDER_HELD_MESSAGES` in bundles. Partitions: each consumer may take the whole concurrency
 * (one busy partition can use every slot); the slots bound what runs, so at most
 * `partitions` × prefetch are held.
 */
export function lanePrefetch(lane: { readonly concurrency: number; readonly bundle: { readonly max: number } }, tolerance: number): number {
  const { concurrency, bundle } = lane;
  if (bundle.max <= 1) return concurrency;
  return Math.max(2 * Math.ceil(concurrency / bundle.max), tolerance > 0 ? ladderBundlePrefetch(bundle.max) : 0);
}

/**
 * Consumes one lane queue: prefetch = concurrency, a handler run per message, and each
 * message settled by the ack-after-confirm rule (`DeliverySettler`) — the replacement
 * (reschedule, retry or dead letter) is confirmed by the broker before the original is
 * acked, and the ack goes on the very channel that delivered it, or not at all.
 */
export class LaneWorker {
  private readonly channel: ManagedChannel<Channel>;
  private readonly log: Logger;
  /** `paused` while the broker blocks publishing: replacements could not be confirmed anyway. */
  private state: 'consuming' | 'paused' | 'stopped' = 'consuming';
  private consumerTags: string[] = [];
  /** Deliveries (AMQP messages) not yet settled: what shutdown drains. */
  private deliveries = 0;
  /** Of those, the ones its consumers got (not taken early by work-ahead): what their prefetch counts. */
  private consumed = 0;
  /** Since when the lane has consumed holding none of its consumers' deliveries (`starvedSince`). */
  private emptySince = Date.now();
  /**
   * Logical messages from their handler's start until their settlement ends: what
   * `orbit_in_flight` counts, changed at the same two points as the observer is told
   * (`handlerStarted`, `messageReleased`), so the two always agree.
   */
  private activeMessages = 0;
  /** Free capacity and idleness, for work-ahead. */
  private readonly load: LaneCapacity;
  /**
   * Handler slots, for bundled or partitioned lanes: there the prefetch cannot bound the
   * running handlers (one delivery holds many messages; each partition's consumer has a
   * prefetch of its own, as RabbitMQ 4.x deprecates channel-wide prefetch and 4.3 refuses it).
   */
  private readonly slots: SlotQueue<SettlingDelivery> | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly limiter: RateLimiter | undefined;
  /** Handlers running now (a handler's replacement may still linger in a bundle after). */
  private running = 0;
  /** Deliveries the broker lets this lane hold unacked, per consumer. */
  private readonly prefetch: number;
  /** Publishes replacements and acks deliveries once they are confirmed. */
  private readonly settler: DeliverySettler;
  /** What settling tells this lane as its messages and deliveries are settled: one object for all of them. */
  private readonly hooks: SettleHooks = {
    messageEnded: (delivery, started) => {
      this.load.release(delivery.early);
      if (started) {
        this.activeMessages--;
        this.o.observer?.messageReleased?.(this.o.lane.name);
      }
    },
    deliveryEnded: (delivery) => this.release(delivery),
  };

  constructor(private readonly o: LaneWorkerOptions) {
    this.log = o.logger.child({ lane: o.lane.name });
    this.slots =
      o.lane.bundle.max > 1 || o.queues.length > 1 || o.holding
        ? new SlotQueue(
            o.lane.concurrency,
            (settling, index) => this.start(settling, index, true),
            // What waits runs by the priority it had in the lane, as decoded: capped at the
            // lane's maxPriority, as the broker ranks a message above it (a bundle has one).
            { of: (settling) => settling.messages[0]?.message.priority ?? 0, max: o.lane.maxPriority },
          )
        : undefined;
    this.prefetch = lanePrefetch(o.lane, o.delay.tolerance);
    this.load = new LaneCapacity(o.lane.concurrency);
    this.settler = new DeliverySettler({ lane: o.lane.name, publisher: o.publisher, logger: this.log, observer: o.observer, recentRuns: o.recentRuns });
    const limit = o.lane.rateLimit;
    this.limiter = limit ? new RateLimiter(limit.max, limit.perMs) : undefined;
    this.channel = new ManagedChannel<Channel>(
      o.connection,
      { name: `lane:${o.lane.name}`, confirm: false, setup: (ch, model) => this.setup(ch, model) },
      o.logger,
    );
    this.channel.on('lost', () => {
      this.consumerTags = [];
      this.settler.channelLost();
    });
  }

  get lane(): LaneConfig {
    return this.o.lane;
  }

  /** The queues its consumers consume: the lane's queue, or its partitions'. */
  get queues(): readonly string[] {
    return this.o.queues;
  }

  /**
   * Messages whose handler runs or whose settlement is under way: what `orbit_in_flight`
   * counts for this lane (logical messages, each of a bundle on its own; not those still
   * waiting for a slot or the rate limit).
   */
  get active(): number {
    return this.activeMessages;
  }

  /** Deliveries taken and not yet settled (a bundle counts once): left unacked if the lane closed now. */
  get unsettled(): number {
    return this.deliveries;
  }

  /** Free handler slots. */
  get capacity(): number {
    return this.load.free;
  }

  /**
   * How long the lane has been idle: consuming, with free capacity and no delivery from the
   * broker (so its queue is empty) — 0 when not idle at all.
   */
  idleFor(now = Date.now()): number {
    if (this.state !== 'consuming' || this.consumerTags.length === 0) return 0;
    return this.load.idleFor(now);
  }

  /**
   * Since when the lane has consumed while holding no delivery of its consumers and getting
   * none: each consumer has its whole prefetch free (`ConsumerWatch`). Undefined while it
   * holds one, or does not consume.
   */
  starvedSince(): number | undefined {
    if (this.state !== 'consuming' || this.consumerTags.length === 0 || this.consumed > 0) return undefined;
    return this.emptySince;
  }

  /** Ends the consume channel for a new one, which consumes again; unacked deliveries go back to the queue. */
  restartConsumer(reason: string): void {
    const ch = this.channel.current();
    if (ch) this.channel.abandon(ch, reason);
  }

  /** True while a channel is open and consuming (or deliberately paused by flow control). */
  get ready(): boolean {
    return this.consumerTags.length > 0 || (this.state === 'paused' && this.channel.current() !== undefined);
  }

  /**
   * Runs a message taken ahead of time (work-ahead) like any delivery, acking it on the
   * channel it was fetched on, and only while `source` still holds that channel.
   */
  runEarly(raw: AmqpMessage, ch: Channel, source: ManagedChannel<Channel>): void {
    this.take({ raw, channel: ch, source, early: true });
  }

  /**
   * Runs a message the rung holder held until due (`worker/rung-holder.ts`) like any
   * delivery, in the lane's slots, acking it on the holder's channel while `source` holds it.
   */
  runHeld(raw: AmqpMessage, ch: Channel, source: ManagedChannel<Channel>): void {
    this.take({ raw, channel: ch, source, early: false, held: true });
  }

  /** Resolves once the first channel is consuming; rejects on a setup error or after `timeoutMs`. */
  async waitUntilConsuming(timeoutMs: number): Promise<void> {
    await this.channel.ready(timeoutMs);
  }

  /**
   * Stops taking new deliveries for good; in-flight messages keep running and settling. The
   * broker's answer to the cancel is awaited for `timeoutMs` at most.
   */
  async stopConsuming(timeoutMs = CHANNEL_CLOSE_TIMEOUT_MS): Promise<void> {
    this.state = 'stopped';
    await this.cancel(timeoutMs);
  }

  /**
   * Flow control: while the broker blocks publishing (memory or disk alarm) the lane takes
   * no new deliveries, so nothing piles up waiting for a confirm; `resume` picks up again.
   */
  async pause(): Promise<void> {
    if (this.state !== 'consuming') return;
    this.state = 'paused';
    await this.cancel();
  }

  async resume(): Promise<void> {
    if (this.state !== 'paused') return;
    this.state = 'consuming';
    const ch = this.channel.current();
    if (!ch || this.consumerTags.length > 0) return;
    try {
      await this.consume(ch);
    } catch (err) {
      // The channel is going (a resume often races a lost connection); its replacement
      // consumes in setup, as the state is `consuming` again. Never an unhandled rejection:
      // callers fire and forget, and Node would exit on it.
      this.log.warn({ err: errorMessage(err) }, 'resume consumer failed; the next channel consumes');
    }
  }

  private async cancel(timeoutMs = CHANNEL_CLOSE_TIMEOUT_MS): Promise<void> {
    const ch = this.channel.current();
    const tags = this.consumerTags;
    this.consumerTags = [];
    if (!ch) return;
    for (const tag of tags) {
      try {
        // Bounded: a stop must not hang on a broker that does not answer (the lane's channel
        // is closed later in the stop, bounded too, and that ends the consumer anyway).
        const answer = await answeredWithin(ch.cancel(tag), timeoutMs);
        if (answer === UNANSWERED) {
          this.log.warn({ ms: timeoutMs }, 'consumer cancel not answered in time; the channel close ends it');
          return;
        }
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'cancel consumer failed');
      }
    }
  }

  /** Waits until nothing is in flight, or `timeoutMs` passes; true when drained. */
  async drain(timeoutMs: number): Promise<boolean> {
    this.settler.giveUpAfter(Date.now() + timeoutMs);
    if (this.deliveries === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return drained;
  }

  /** Closes the channel; deliveries still unacked go back to the queue. */
  close(): Promise<void> {
    // Settled deliveries whose ack waits for the end of this turn must not be redelivered.
    this.settler.flush();
    return this.channel.close();
  }

  private async setup(ch: Channel, model: ChannelModel): Promise<void> {
    await this.o.setup?.(ch, model);
    await ch.prefetch(this.prefetch, false);
    if (this.state === 'consuming') await this.consume(ch);
  }

  private async consume(ch: Channel): Promise<void> {
    const tags: string[] = [];
    for (const queue of this.o.queues) {
      const { consumerTag } = await ch.consume(queue, (raw) => {
        if (raw) {
          this.consumed++;
          const from = this.o.rungs && raw.properties.headers?.['x-first-death-queue'];
          if (typeof from === 'string') this.o.rungs!.seen(from);
          this.settler.received(raw, ch);
          this.take({ raw, channel: ch, source: this.channel, early: false });
        }
        // null: the broker cancelled the consumer (queue deleted); a fresh channel re-declares and resumes.
        else void ch.close().catch(() => undefined);
      });
      tags.push(consumerTag);
    }
    this.consumerTags = tags;
    this.emptySince = Date.now();
  }

  private take(delivery: Delivery): void {
    this.deliveries++;
    const { raw, early } = delivery;
    // Work that fell due (the lane's own delivery, or a held one): the lane is not idle.
    // Only what work-ahead takes early leaves it idle, or it would end its own working ahead.
    if (!early) this.load.delivered();
    let messages: IncomingMessage[];
    try {
      messages = decodeDelivery(raw, this.o.lane, Date.now(), early);
    } catch (err) {
      // Never expected (a delivery that does not decode is one BAD_BODY message); left unacked.
      this.logUnexpected(err);
      this.release(delivery);
      return;
    }
    this.load.hold(messages.length, early);
    if (this.o.lane.bundle.max > 1) this.o.observer?.deliveryDecoded?.(this.o.lane.name, messages.length);
    // Every logical message of the delivery must be settled before the delivery is acked.
    const settling = this.settler.begin(delivery, messages, this.hooks);
    if (this.slots) this.slots.add(settling);
    else for (let i = 0; i < messages.length; i++) this.start(settling, i, false);
  }

  /** Runs message `index` of a delivery (`inSlot`: in a slot of `slots`, given back when its handler returns). */
  private start(settling: SettlingDelivery, index: number, inSlot: boolean): void {
    this.run(settling, index, inSlot).catch((err: unknown) => {
      this.logUnexpected(err);
      settling.settled(index, false);
    });
  }

  /** A bug of ours, never a handler's failure (those are outcomes): logged, the delivery left to the broker. */
  private logUnexpected(err: unknown): void {
    this.log.error({ err: errorMessage(err) }, 'unexpected error while processing a delivery');
  }

  /**
   * A handler finished. If none runs any more and the lane holds all the deliveries its
   * prefetch allows, every one of them waits only for replacements lingering in bundles: send
   * them now, or the lane would idle until their holds run out.
   */
  private flushWhenStarved(): void {
    this.running--;
    if (this.running === 0 && this.deliveries >= this.prefetch && this.o.publisher.lingering > 0) this.o.publisher.flush();
  }

  private release(delivery: Pick<Delivery, 'early' | 'held'>): void {
    this.deliveries--;
    // Only the lane's own deliveries count against its consumers' prefetch.
    if (!delivery.early && !delivery.held && --this.consumed === 0) this.emptySince = Date.now();
    if (this.deliveries === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Runs message `index` of a delivery and hands it to settling; gives its slot back when its handler returns. */
  private async run(settling: SettlingDelivery, index: number, inSlot: boolean): Promise<void> {
    const { delivery } = settling;
    // A slot is a running handler. It is given back when the handler returns, not when
    // its replacement is confirmed: the replacement may linger in an outgoing bundle
    // waiting for company, and with concurrency below bundle.max a lane holding slots
    // until then would run one bundle per linger. What is held meanwhile stays bounded
    // by the prefetch (deliveries are still acked only once every replacement is confirmed).
    let slotHeld = inSlot;
    let runningHere = true;
    this.running++;
    const freeSlot = (): void => {
      if (slotHeld) this.slots!.release();
      slotHeld = false;
      if (runningHere) {
        runningHere = false;
        this.flushWhenStarved();
      }
    };
    try {
      // It waited for a slot while its channel closed: the broker hands the bundle out
      // again, so running it here would run it twice.
      if (inSlot && !delivery.source.isCurrent(delivery.channel)) settling.settled(index, false);
      else await this.runOne(settling, index, freeSlot);
    } finally {
      freeSlot();
    }
  }

  /**
   * Runs one logical message and hands its outcome to settling, which settles it once its
   * replacement is confirmed (at once when none is needed; false when it cannot be). Returns
   * when the handler has: nothing here waits for the confirm (`SettlingDelivery`).
   */
  private async runOne(settling: SettlingDelivery, index: number, handlerDone: () => void): Promise<void> {
    const incoming = settling.messages[index]!;
    const { delivery } = settling;
    const { message } = incoming;
    const lane = this.o.lane.name;
    const observer = this.o.observer;
    const tombstones = this.o.tombstones;
    if (tombstones?.cancels(message.id, incoming.generation)) return this.drop(settling, index, 'cancelled', handlerDone);
    if (this.o.recentRuns) {
      const key = incoming.runKey;
      const copy = key === undefined ? undefined : this.o.recentRuns.copyOf(key, incoming.dueAtMs);
      if (copy !== undefined) return this.drop(settling, index, copy, handlerDone);
    }
    // A hop of a long delay: on for the rest of it, unless due by now (or taken early by work-ahead).
    if (incoming.waypoint && !message.early) {
      const left = incoming.dueAtMs - Date.now();
      if (left > 0) {
        handlerDone();
        return settling.settleWhen(index, this.settler.sendOn(incoming, left, delivery));
      }
    }
    if (this.limiter) {
      const waitedMs = await this.limiter.acquire();
      if (waitedMs > 0) observer?.rateLimited?.(lane, waitedMs);
      // The delivering channel closed while it waited (connection lost, or stop ran out of
      // time): the broker has already handed the message out again; running it would run it twice.
      if (!delivery.source.isCurrent(delivery.channel)) return settling.settled(index, false);
    }
    const started = Date.now();
    // `active` and the observer (orbit_in_flight) count from here until the message is
    // settled (`hooks.messageEnded`), together.
    this.activeMessages++;
    settling.started(index);
    observer?.handlerStarted?.(lane, started - incoming.dueAtMs, message.early, incoming.allowedMs);
    const result: HandlerResult = incoming.badBody
      ? { ok: false, error: incoming.badBody }
      : await runHandler(this.o.handler, message, () => this.log.child({ id: message.id }), this.o.lane.timeoutMs);
    const finished = Date.now();
    handlerDone();
    if (!incoming.badBody) observer?.handlerFinished?.(lane, finished - started);
    const settlement = decideOutcome(result, incoming.decision, { lanes: this.o.lanes, delay: this.o.delay, now: finished });
    // Cancelled while it ran: the run stands, no copy of it goes on.
    if (settlement.kind !== 'done' && tombstones?.cancels(message.id, incoming.generation)) return this.drop(settling, index, 'cancelled');
    if (settlement.kind === 'dead' || settlement.kind === 'retried') this.logFailure(message.id, message.attempt, settlement, result);
    this.settler.replace(settlement, settling, index);
  }

  /**
   * A delivery that must not run, acked with nothing in its place: a copy of a cancelled id,
   * or a copy of a run settled here lately (`RecentRuns`: the very message, or a fork of it),
   * whose replacement is confirmed already; the ack the broker forgot would have done the same.
   */
  private drop(settling: SettlingDelivery, index: number, why: 'cancelled' | CopyKind, handlerDone?: () => void): void {
    handlerDone?.();
    const { id } = settling.messages[index]!.message;
    const lane = this.o.lane.name;
    if (why === 'cancelled') this.o.observer?.messageCancelled?.(lane);
    else this.o.observer?.copyDropped?.(lane, why);
    this.log.debug({ id, why }, 'copy dropped');
    settling.settled(index, true);
  }

  /** One line per failure (never per success): what failed, and where the message went. */
  private logFailure(id: string, attempt: number, settlement: Settlement, result: HandlerResult): void {
    const dead = settlement.kind === 'dead';
    this.log.warn(
      {
        id,
        attempt,
        outcome: settlement.kind,
        code: dead ? settlement.info.code : undefined,
        err: dead ? settlement.info.message : result.ok ? undefined : errorMessage(result.error),
      },
      dead ? 'message dead-lettered' : 'handler failed; retry scheduled',
    );
  }
}
