import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { ConfirmChannel } from 'amqplib';
import type { ResolvedConfig } from '../config/types';
import type { Logger } from '../logging/logger';
import { assertTopology } from '../topology/assert';
import type { Topology } from '../topology/build';
import { ConfirmedPublisher } from './confirmed-publisher';
import { ManagedChannel } from './managed-channel';

export interface PublishChannel {
  readonly channel: ManagedChannel<ConfirmChannel>;
  readonly publisher: ConfirmedPublisher;
  /** Resolves when the topology is asserted and the channel is usable; rejects with the first setup error. */
  ready(timeoutMs: number): Promise<void>;
}

/**
 * A confirm channel that asserts the whole topology each time it is (re)opened, plus the
 * confirmed publisher on top of it. Used by the daemon, the Scheduler API and the CLI.
 */
export function openPublishChannel(
  connection: AmqpConnectionManager,
  config: Pick<ResolvedConfig, 'amqp'>,
  topology: Topology,
  logger: Logger,
): PublishChannel {
  const channel = new ManagedChannel<ConfirmChannel>(
    connection,
    { name: 'publish', confirm: true, setup: (ch) => assertTopology(ch, topology) },
    logger,
  );
  const publisher = new ConfirmedPublisher(channel, config.amqp.publishTimeoutMs);
  connection.on('blocked', () => publisher.setBlocked(true));
  connection.on('unblocked', () => publisher.setBlocked(false));
  connection.on('disconnect', () => publisher.setBlocked(false));
  return {
    channel,
    publisher,
    ready: async (timeoutMs) => {
      await channel.ready(timeoutMs);
    },
  };
}
