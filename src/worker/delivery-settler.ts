import type { Message as AmqpMessage } from 'amqplib';
import { errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import type { OutgoingMessage } from '../message/types';
import type { Settle } from '../publish/bundler';
import type { MessagePublisher } from '../publish/message-publisher';
import { AckBatcher, type AckChannel } from './ack-batcher';
import type { Settlement } from './decide-outcome';
import type { IncomingMessage } from './incoming';
import type { WorkerObserver } from './observer';
import type { RecentRuns } from './recent-runs';

/** A waypoint sent on (`sendOn`): published like a reschedule, but not the outcome of a run. */
interface Forwarded {
  readonly kind: 'forwarded';
  readonly message: OutgoingMessage;
}

/**
 * A first try that failed elsewhere, boxed: a promise may reject with `undefined`, and that
 * must still count as a failure (start with the backoff), not as no try at all.
 */
interface FirstFailure {
  readonly error: unknown;
}

const PUBLISH_KIND = { rescheduled: 'reschedule', retried: 'retry', forwarded: 'waypoint' } as const;

/** Longest pause between attempts to publish a replacement the broker keeps refusing. */
export const MAX_SETTLE_BACKOFF_MS = 30_000;

/** What settling needs of the channel manager a delivery came through (a `ManagedChannel`). */
export interface DeliverySource {
  /** True while `channel` is the live channel: only then does an ack on it reach this delivery. */
  isCurrent(channel: AckChannel): boolean;
}

/** One delivery (a message or a bundle) and where it came from: what its ack needs. */
export interface Delivery {
  readonly raw: AmqpMessage;
  /** The channel that delivered it: the one channel its ack may go on. */
  readonly channel: AckChannel;
  readonly source: DeliverySource;
  /** Taken early by work-ahead: that channel also nacks (not every delivery goes through a batcher), so it is acked singly. */
  readonly early: boolean;
  /** Held until due by the rung holder: that channel holds deliveries not yet run, so it is acked singly too. */
  readonly held?: boolean;
}

/** What a `DeliverySettler` works with. */
export interface DeliverySettlerOptions {
  /** The lane, as the observer hooks name it. */
  readonly lane: string;
  /** Publishes replacements: `scheduleWith` calls back, and each promise resolves, once the broker confirmed it (a bundle: once the bundle is). */
  readonly publisher: Pick<MessagePublisher, 'schedule' | 'scheduleWith' | 'deadLetter'>;
  readonly logger: Logger;
  readonly observer?: Pick<WorkerObserver, 'messageSettled' | 'settleFailed'>;
  /** Told of every run settled (not a dead letter): a copy of it delivered later is dropped. @defaultValue none */
  readonly recentRuns?: RecentRuns;
}

/** What a settling delivery tells its worker. */
export interface SettleHooks {
  /** One logical message is settled (`started`: its handler had started, so `orbit_in_flight` counted it). */
  messageEnded(delivery: Delivery, started: boolean): void;
  /** Every logical message of the delivery is settled, and its ack (if it gets one) is sent or queued. */
  deliveryEnded(delivery: Delivery): void;
}

/** A message's place in its delivery: waiting, its handler started, settled. */
const WAITING = 0;
const STARTED = 1;
const SETTLED = 2;

/**
 * One delivery on its way to its ack: how many of its logical messages are still unsettled,
 * and whether every one settled so far was confirmed.
 *
 * Why not a promise per message: on a bundled lane a replacement may linger in its outgoing
 * bundle for seconds (what its tolerance allows), and each logical message then held a chain
 * of suspended async functions, promises and closures until the bundle's confirm: ~3 KB per
 * message, most of what the lane's garbage collector copied (docs/BENCHMARKS.md, session 26).
 * Here a replacement reports back through `confirmed`, one function per delivery with the
 * message's index as its token, so a lingering message holds nothing of its own but itself.
 */
export class SettlingDelivery {
  /** The publisher's callback for this delivery's replacements (`Settle`; token: the message's index). */
  readonly confirmed: Settle;
  /** What each message's replacement was, while it is out (for another try if it fails). */
  readonly out: Array<Settlement | undefined>;
  private readonly states: Uint8Array;
  private left: number;
  private ok = true;

  constructor(
    readonly delivery: Delivery,
    readonly messages: readonly IncomingMessage[],
    private readonly settler: DeliverySettler,
    private readonly hooks: SettleHooks,
  ) {
    this.left = messages.length;
    this.states = new Uint8Array(messages.length);
    this.out = new Array<Settlement | undefined>(messages.length);
    this.confirmed = (token, ok, err) => settler.confirmed(this, token, ok, err);
    // A bundle of none (a publisher may write one): nothing to wait for.
    if (this.left === 0) this.end();
  }

  /** Message `index`'s handler starts: it counts as in flight until it is settled. */
  started(index: number): void {
    if (this.states[index] === WAITING) this.states[index] = STARTED;
  }

  /**
   * Message `index` is settled: `ok` when its replacement is confirmed or none was needed.
   * Once the last one is, the delivery is acked if every one was ok. A second settling of the
   * same message (an unexpected error after it settled) is ignored.
   */
  settled(index: number, ok: boolean): void {
    const state = this.states[index];
    if (state === undefined || state === SETTLED) return;
    this.states[index] = SETTLED;
    this.out[index] = undefined;
    if (!ok) this.ok = false;
    this.hooks.messageEnded(this.delivery, state === STARTED);
    if (--this.left === 0) this.end();
  }

  /** Settles message `index` when `outcome` does (false when it rejects). */
  settleWhen(index: number, outcome: Promise<boolean>): void {
    outcome.then(
      (ok) => this.settled(index, ok),
      () => this.settled(index, false),
    );
  }

  private end(): void {
    if (this.ok) this.settler.ack(this.delivery);
    this.hooks.deliveryEnded(this.delivery);
  }
}

/**
 * Settling, by the ack-after-confirm rule: a delivery is acked only once the replacement of
 * every logical message in it (reschedule, retry or dead letter, alone or in an outgoing
 * bundle) is confirmed by the broker, and only on the very channel that delivered it while
 * that channel is still the live one. Otherwise nothing is sent at all — no nack either: the
 * original stays unacked and the broker hands it out again when its channel closes, so a
 * message is never lost (at worst run twice after a crash), and never has two live copies.
 *
 * Acks of the consume channel are coalesced per event-loop turn (`AckBatcher`); the batcher
 * belongs to one channel and is dropped with it.
 */
export class DeliverySettler {
  /** Acks of the current consume channel, coalesced per event-loop turn. */
  private acks: { readonly channel: AckChannel; readonly batcher: AckBatcher } | undefined;
  /** Past this time (shutdown's deadline) a refused replacement is not tried again. */
  private deadline = Infinity;

  constructor(private readonly o: DeliverySettlerOptions) {}

  /** Records a consume-channel delivery as it arrives, in delivery order (the batcher's window). */
  received(raw: AmqpMessage, channel: AckChannel): void {
    this.batcherFor(channel).received(raw);
  }

  /** Shutdown: stop retrying refused replacements after `deadline` (epoch ms), leaving their originals unacked. */
  giveUpAfter(deadline: number): void {
    this.deadline = deadline;
  }

  /** The consume channel is gone: the broker requeued everything unacked on it; nothing more is acked there. */
  channelLost(): void {
    this.acks?.batcher.discard();
    this.acks = undefined;
  }

  /** Sends the acks waiting for the end of this turn (before a close, so settled deliveries are not redelivered). */
  flush(): void {
    this.acks?.batcher.flush();
  }

  /** Starts settling a delivery: `hooks` hear of each message and of the delivery as they are settled. */
  begin(delivery: Delivery, messages: readonly IncomingMessage[], hooks: SettleHooks): SettlingDelivery {
    return new SettlingDelivery(delivery, messages, this, hooks);
  }

  /** Acks a delivery whose messages are all settled, on the channel that delivered it, while that channel lives. */
  ack(delivery: Delivery): void {
    if (!delivery.source.isCurrent(delivery.channel)) return;
    if (delivery.early || delivery.held) delivery.channel.ack(delivery.raw);
    else this.batcherFor(delivery.channel).ack(delivery.raw);
  }

  /**
   * Settles message `index` of `settling` with the replacement `settlement` asks for: at
   * once for `done`; otherwise once the broker confirmed it, publishing it again with backoff
   * while that still matters (the delivering channel is alive, else the broker has already
   * requeued the original; and shutdown has not run out of time). The handler is never run
   * again for it here.
   */
  replace(settlement: Settlement, settling: SettlingDelivery, index: number): void {
    if (settlement.kind === 'done') {
      this.ran(settling.messages[index]!, 'done');
      settling.settled(index, true);
      return;
    }
    const incoming = settling.messages[index]!;
    if (settlement.kind === 'dead') {
      settling.settleWhen(index, this.publishUntilConfirmed(settlement, incoming, settling.delivery));
      return;
    }
    if (!this.stillDelivering(incoming, settling.delivery)) {
      settling.settled(index, false);
      return;
    }
    // The common case, a reschedule or retry: no promise of its own (`SettlingDelivery`).
    settling.out[index] = settlement;
    try {
      this.o.publisher.scheduleWith(settlement.message, settling.confirmed, index, PUBLISH_KIND[settlement.kind]);
    } catch (err) {
      this.retryLater(settlement, settling, index, err);
    }
  }

  /** The publisher's answer for a replacement sent by `replace` (`SettlingDelivery.confirmed`). */
  confirmed(settling: SettlingDelivery, index: number, ok: boolean, err?: unknown): void {
    const settlement = settling.out[index];
    if (settlement === undefined) return;
    if (ok) {
      this.ran(settling.messages[index]!, settlement.kind);
      settling.settled(index, true);
    } else {
      this.retryLater(settlement, settling, index, err);
    }
  }

  /** A replacement refused (synchronously or by the broker): the promise path, with backoff, settles it. */
  private retryLater(settlement: Settlement, settling: SettlingDelivery, index: number, err: unknown): void {
    settling.settleWhen(index, this.publishUntilConfirmed(settlement, settling.messages[index]!, settling.delivery, { error: err }));
  }

  /**
   * Sends a waypoint on for the `leftMs` of its delay that remain (`delay/waypoints.ts`): no
   * run, so no outcome counted; acked, like a replacement, once the next hop is confirmed.
   */
  sendOn(incoming: IncomingMessage, leftMs: number, delivery: Pick<Delivery, 'channel' | 'source'>): Promise<boolean> {
    const d = incoming.decision;
    const message: OutgoingMessage = {
      id: d.id,
      lane: d.lane.name,
      body: d.body,
      priority: d.priority,
      dueAt: incoming.dueAtMs,
      delayMs: leftMs,
      key: d.key,
      runs: d.runs,
      attempt: d.attempt,
      generation: d.generation,
      headers: d.userHeaders,
    };
    return this.publish({ kind: 'forwarded', message }, incoming, delivery);
  }

  /** `publish`, and the settled message counted once it is confirmed. */
  private async publishUntilConfirmed(settlement: Settlement, incoming: IncomingMessage, delivery: Pick<Delivery, 'channel' | 'source'>, failed?: FirstFailure): Promise<boolean> {
    const ok = await this.publish(settlement, incoming, delivery, failed);
    if (ok) this.ran(incoming, settlement.kind);
    return ok;
  }

  /**
   * A run is settled: counted, and remembered so that a copy of it is not run again. Not a
   * dead letter: `orbit dlq replay` may bring that very message back, to run once more.
   */
  private ran(incoming: IncomingMessage, kind: Settlement['kind']): void {
    this.o.observer?.messageSettled?.(this.o.lane, kind);
    if (kind === 'dead' || !this.o.recentRuns) return;
    const key = incoming.runKey;
    // A retried run's key is shared by what `orbit dlq replay` sends back: only its exact copy is one.
    if (key !== undefined) this.o.recentRuns.add(key, incoming.dueAtMs, kind !== 'retried');
  }

  /** False (and says why) once the delivering channel has closed. */
  private stillDelivering(incoming: IncomingMessage, { channel, source }: Pick<Delivery, 'channel' | 'source'>): boolean {
    if (source.isCurrent(channel)) return true;
    // The delivering channel closed while the handler ran: the broker has already requeued
    // the original and will hand it out again. Publishing its replacement now would leave
    // two live copies of the message, each rescheduling itself for ever.
    this.o.logger.warn({ id: incoming.message.id }, 'delivery channel closed during the handler; outcome dropped, the broker redelivers the message');
    return false;
  }

  /**
   * Publishes a replacement until it is confirmed, with backoff; false once that no longer
   * matters. `failed`: a first try made elsewhere (`replace`) failed, so this starts with its
   * backoff (whatever its error was, `undefined` included).
   */
  private async publish(settlement: Settlement | Forwarded, incoming: IncomingMessage, delivery: Pick<Delivery, 'channel' | 'source'>, failed?: FirstFailure): Promise<boolean> {
    if (settlement.kind === 'done') return true;
    if (failed === undefined && !this.stillDelivering(incoming, delivery)) return false;
    const log = this.o.logger;
    for (let attempt = 0; ; attempt++) {
      let error: unknown;
      if (failed) {
        error = failed.error;
        failed = undefined;
      } else {
        try {
          if (settlement.kind === 'dead') await this.o.publisher.deadLetter(incoming.stored, settlement.info, Date.now());
          else await this.o.publisher.schedule(settlement.message, PUBLISH_KIND[settlement.kind]);
          return true;
        } catch (err) {
          error = err;
        }
      }
      this.o.observer?.settleFailed?.(this.o.lane, error);
      const wait = Math.min(MAX_SETTLE_BACKOFF_MS, 100 * 2 ** attempt);
      if (!delivery.source.isCurrent(delivery.channel) || Date.now() + wait > this.deadline) {
        log.warn({ id: incoming.message.id, err: errorMessage(error) }, 'replacement not confirmed; original left unacked for redelivery');
        return false;
      }
      log.warn({ id: incoming.message.id, err: errorMessage(error), retryInMs: wait }, 'replacement not confirmed; retrying');
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** The ack batcher of a consume channel (a new channel replaces the old one's). */
  private batcherFor(channel: AckChannel): AckBatcher {
    if (this.acks?.channel === channel) return this.acks.batcher;
    this.acks?.batcher.discard();
    this.acks = { channel, batcher: new AckBatcher(channel) };
    return this.acks.batcher;
  }
}
