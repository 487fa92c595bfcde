import type { AmqpConnectionManager } from 'amqp-connection-manager';
import { openPublishChannel, type PublishChannel } from '../amqp/publish-channel';
import { RungDeclarer } from '../amqp/rung-declarer';
import type { TopologyAsserter } from '../amqp/topology-asserter';
import type { ResolvedConfig } from '../config/types';
import type { Logger } from '../logging/logger';
import { configLongestHopMs } from '../delay/waypoints';
import { names } from '../naming/names';
import { MessagePublisher, type PublishObserver } from './message-publisher';

/** Everything that publishing on one connection takes; the owner closes `channel` and `rungs`. */
export interface PublishStack {
  readonly channel: PublishChannel;
  /** Declares ladder rungs on first use; only on the ladder (`delay.tolerance` > 0). */
  readonly rungs: RungDeclarer | undefined;
  readonly publisher: MessagePublisher;
}

/**
 * The publishing side of a connection: a topology-asserting confirm channel, the rung
 * declarer on the ladder, and the logical → AMQP publisher over both. One wiring shared by
 * the daemon and `BrokerSession` (the Scheduler API and the CLI), so they cannot drift apart.
 * Not yet ready: await `channel.ready()`.
 */
export function openPublisher(
  connection: AmqpConnectionManager,
  config: ResolvedConfig,
  topology: Pick<TopologyAsserter, 'assert'>,
  logger: Logger,
  observer?: PublishObserver,
): PublishStack {
  const channel = openPublishChannel(connection, config, topology, logger);
  const rungs = config.delay.tolerance > 0 ? new RungDeclarer(connection, config, logger) : undefined;
  const publisher = new MessagePublisher(channel.publisher, names(config.namespace), config.delay, config.lanes, rungs, {
    observer,
    longestHopMs: configLongestHopMs(config),
    logger,
  });
  return { channel, rungs, publisher };
}
