import type { ConfirmChannel, Options } from 'amqplib';

/**
 * One publish on a confirm channel of the caller's, resolved by its confirm and rejected with
 * the broker's nack (or the channel's loss). For the odd message outside the publisher's flow
 * (a sync mark, a signal); the hot path uses `ConfirmedPublisher`.
 */
export function publishConfirmed(ch: ConfirmChannel, exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    ch.publish(exchange, routingKey, content, options, (err: unknown) => (err ? reject(err) : resolve()));
  });
}
