import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { ConfirmChannel } from 'amqplib';
import type { ResolvedConfig } from '../config/types';
import type { Logger } from '../logging/logger';
import { ConfirmedPublisher } from './confirmed-publisher';
import { awaitFirstConnect } from './connection';
import { ManagedChannel } from './managed-channel';
import type { TopologyAsserter } from './topology-asserter';

export interface PublishChannel {
  readonly channel: ManagedChannel<ConfirmChannel>;
  readonly publisher: ConfirmedPublisher;
  /**
   * Resolves when the topology is asserted and the channel is usable; rejects with the first
   * setup error. The first connect is awaited under `amqp.connectTimeout` (a refused login or
   * vhost rejects at once) unless `connectTimeoutMs` says otherwise, then the channel's
   * setup under `timeoutMs`.
   */
  ready(timeoutMs: number, connectTimeoutMs?: number): Promise<void>;
}

/**
 * A confirm channel that asserts the whole topology each time it is (re)opened, plus the
 * confirmed publisher on top of it. Used by the daemon, the Scheduler API and the CLI.
 * `topology` may be any setup of that shape: a read-only session passes one that only checks.
 */
export function openPublishChannel(
  connection: AmqpConnectionManager,
  config: Pick<ResolvedConfig, 'amqp'>,
  topology: Pick<TopologyAsserter, 'assert'>,
  logger: Logger,
): PublishChannel {
  const channel = new ManagedChannel<ConfirmChannel>(
    connection,
    { name: 'publish', confirm: true, setup: (_ch, model) => topology.assert(model) },
    logger,
  );
  const publisher = new ConfirmedPublisher(channel, config.amqp.publishTimeoutMs, logger);
  connection.on('blocked', () => publisher.setBlocked(true));
  connection.on('unblocked', () => publisher.setBlocked(false));
  connection.on('disconnect', () => publisher.setBlocked(false));
  return {
    channel,
    publisher,
    ready: async (timeoutMs, connectTimeoutMs = config.amqp.connectTimeoutMs) => {
      await awaitFirstConnect(connection, connectTimeoutMs);
      await channel.ready(timeoutMs);
    },
  };
}
