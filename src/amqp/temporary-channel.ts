import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import type { Logger } from '../logging/logger';
import { ManagedChannel } from './managed-channel';

/**
 * Runs `fn` on a plain (non-confirm) channel of its own on `connection`, closed afterwards —
 * which hands back every message fetched and not acked, in its original position on a
 * classic queue. `open` (when given) holds the channel while `fn` runs, for an owner that
 * closes what is still open when it closes itself.
 */
export async function withTemporaryChannel<T>(
  connection: AmqpConnectionManager,
  name: string,
  logger: Logger,
  fn: (channel: Channel) => Promise<T>,
  options: { readonly timeoutMs?: number; readonly open?: Set<ManagedChannel<Channel>> } = {},
): Promise<T> {
  const managed = new ManagedChannel<Channel>(connection, { name, confirm: false, setup: async () => {} }, logger);
  options.open?.add(managed);
  try {
    return await fn(await managed.ready(options.timeoutMs ?? 30_000));
  } finally {
    options.open?.delete(managed);
    await managed.close();
  }
}
