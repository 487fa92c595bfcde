import type { Message as AmqpMessage } from 'amqplib';
import { errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import type { OutgoingMessage } from '../message/types';
import type { MessagePublisher } from '../publish/message-publisher';
import { AckBatcher, type AckChannel } from './ack-batcher';
import type { Settlement } from './decide-outcome';
import type { IncomingMessage } from './incoming';
import type { WorkerObserver } from './observer';

/** A waypoint sent on (`sendOn`): published like a reschedule, but not the outcome of a run. */
interface Forwarded {
  readonly kind: 'forwarded';
  readonly message: OutgoingMessage;
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
}

/** What a `DeliverySettler` works with. */
export interface DeliverySettlerOptions {
  /** The lane, as the observer hooks name it. */
  readonly lane: string;
  /** Publishes replacements; each promise resolves once the broker confirmed it (a bundle: once the bundle is). */
  readonly publisher: Pick<MessagePublisher, 'schedule' | 'deadLetter'>;
  readonly logger: Logger;
  readonly observer?: Pick<WorkerObserver, 'messageSettled' | 'settleFailed'>;
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

  /**
   * Runs `settle` for every logical message of the delivery (together, for a bundle) and
   * acks the delivery once each has returned true (its replacement confirmed, or none
   * needed). One false and the delivery is left unacked.
   */
  async settleDelivery<T>(delivery: Delivery, messages: readonly T[], settle: (message: T) => Promise<boolean>): Promise<void> {
    const settled = messages.length === 1 ? await settle(messages[0]!) : (await Promise.all(messages.map(settle))).every(Boolean);
    if (!settled || !delivery.source.isCurrent(delivery.channel)) return;
    if (delivery.early) delivery.channel.ack(delivery.raw);
    else this.batcherFor(delivery.channel).ack(delivery.raw);
  }

  /**
   * Publishes one logical message's replacement, retrying with backoff while it still
   * matters: the delivering channel is alive (else the broker has already requeued the
   * original) and shutdown has not run out of time. True once confirmed (at once for
   * `done`); the handler is never run again for it here.
   */
  async replace(settlement: Settlement, incoming: IncomingMessage, delivery: Pick<Delivery, 'channel' | 'source'>): Promise<boolean> {
    const ok = await this.publish(settlement, incoming, delivery);
    if (ok) this.o.observer?.messageSettled?.(this.o.lane, settlement.kind);
    return ok;
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
      dueAt: incoming.message.dueAt.getTime(),
      delayMs: leftMs,
      key: d.key,
      runs: d.runs,
      attempt: d.attempt,
      generation: d.generation,
      headers: d.userHeaders,
    };
    return this.publish({ kind: 'forwarded', message }, incoming, delivery);
  }

  private async publish(settlement: Settlement | Forwarded, incoming: IncomingMessage, { channel, source }: Pick<Delivery, 'channel' | 'source'>): Promise<boolean> {
    if (settlement.kind === 'done') return true;
    const log = this.o.logger;
    // The delivering channel closed while the handler ran: the broker has already requeued
    // the original and will hand it out again. Publishing its replacement now would leave
    // two live copies of the message, each rescheduling itself for ever.
    if (!source.isCurrent(channel)) {
      log.warn({ id: incoming.message.id }, 'delivery channel closed during the handler; outcome dropped, the broker redelivers the message');
      return false;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        if (settlement.kind === 'dead') await this.o.publisher.deadLetter(incoming.stored, settlement.info, Date.now());
        else await this.o.publisher.schedule(settlement.message, PUBLISH_KIND[settlement.kind]);
        return true;
      } catch (err) {
        this.o.observer?.settleFailed?.(this.o.lane, err);
        const wait = Math.min(MAX_SETTLE_BACKOFF_MS, 100 * 2 ** attempt);
        if (!source.isCurrent(channel) || Date.now() + wait > this.deadline) {
          log.warn({ id: incoming.message.id, err: errorMessage(err) }, 'replacement not confirmed; original left unacked for redelivery');
          return false;
        }
        log.warn({ id: incoming.message.id, err: errorMessage(err), retryInMs: wait }, 'replacement not confirmed; retrying');
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
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
