import type { Channel, Message } from 'amqplib';
import type { DeliverySource } from './delivery-settler';

/**
 * Sends a message taken unacked from a delay queue on (`forward`: for the rest of its delay,
 * or to its lane when due) and acks it on `ch` once the copy is confirmed. If the copy fails,
 * the message is handed back to its queue with a nack: late, never lost. Either only while
 * `source` still holds `ch`: a channel that closed meanwhile returned the message, so the copy
 * is then a duplicate, never a loss. Used by work-ahead and the rung holder.
 */
export async function sendOnThenAck<M extends Message>(
  forward: (msg: M) => Promise<void>,
  msg: M,
  ch: Channel,
  source: DeliverySource,
  failed: (err: unknown) => void,
): Promise<void> {
  try {
    await forward(msg);
  } catch (err) {
    failed(err);
    if (source.isCurrent(ch)) ch.nack(msg, false, true);
    return;
  }
  if (source.isCurrent(ch)) ch.ack(msg);
}
