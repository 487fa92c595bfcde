import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { ConfirmChannel } from 'amqplib';
import type { ResolvedConfig } from '../config/types';
import type { Logger } from '../logging/logger';
import { ConfirmedPublisher } from './confirmed-publisher';
import { ManagedChannel } from './managed-channel';
import type { TopologyAsserter } from './topology-asserter';

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
  topology: TopologyAsserter,
  logger: Logger,
): PublishChannel {
  const channel = new ManagedChannel<ConfirmChannel>(
    connection,
    { name: 'publish', confirm: true, setup: (_ch, model) => topology.assert(model) },
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
