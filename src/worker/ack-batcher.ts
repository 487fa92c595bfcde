import type { Channel, Message as AmqpMessage } from 'amqplib';

/** What the batcher needs of a channel: amqplib's `ack(message, allUpTo)`. */
export type AckChannel = Pick<Channel, 'ack'>;

/**
 * Acks the settled deliveries of one consume channel, coalescing the acks of one
 * event-loop turn: the run of settled deliveries at the front of the channel's unacked
 * window goes as one `basic.ack multiple`, the rest one by one.
 *
 * Why it is safe: a multiple ack covers exactly the deliveries with lower tags that are
 * still unacked, and the batcher only sends one whose range holds nothing but settled
 * deliveries. A delivery left unacked on purpose (its replacement was not confirmed) is
 * never settled here, so it stops every multiple ack at its tag and goes back to the queue
 * when the channel closes. Nothing waits behind a slow handler either: a settled delivery
 * above an unsettled one is acked on its own in the same turn, so the prefetch window never
 * fills with settled-but-unacked messages.
 *
 * Only for channels whose every delivery goes through `received` (a lane's consume
 * channel); acks sent to the channel by anyone else would be double-counted.
 */
export class AckBatcher {
  /** Unacked deliveries in tag order (a Map keeps insertion order, and tags rise). */
  private readonly unacked = new Map<number, AmqpMessage>();
  private readonly settled = new Set<number>();
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly channel: AckChannel) {}

  /** Records a delivery as it arrives (in delivery order). */
  received(message: AmqpMessage): void {
    this.unacked.set(message.fields.deliveryTag, message);
  }

  /** The delivery is settled: ack it within this event-loop turn. */
  ack(message: AmqpMessage): void {
    if (this.closed) return;
    this.settled.add(message.fields.deliveryTag);
    this.scheduled ??= setImmediate(() => this.flush());
  }

  /** Sends the pending acks now (before the channel closes, so no settled delivery is redelivered). */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.closed || this.settled.size === 0) return;
    try {
      let front: AmqpMessage | undefined;
      for (const [tag, message] of this.unacked) {
        if (!this.settled.has(tag)) break;
        front = message;
        this.settled.delete(tag);
        this.unacked.delete(tag);
      }
      if (front) this.channel.ack(front, true);
      for (const tag of this.settled) {
        const message = this.unacked.get(tag);
        if (!message) continue;
        this.unacked.delete(tag);
        this.channel.ack(message, false);
      }
      this.settled.clear();
    } catch {
      // The channel closed under us (amqplib throws on a closed channel): the broker has
      // requeued every unacked delivery, so there is nothing left to ack on it.
      this.discard();
    }
  }

  /** The channel is gone: the broker requeued everything unacked; nothing more is sent. */
  discard(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.closed = true;
    this.unacked.clear();
    this.settled.clear();
  }

  /** Deliveries received and not yet acked (settled ones waiting for the flush included). */
  get pending(): number {
    return this.unacked.size;
  }
}
