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
  // Each detour at debug (one line per message while a rung is sick: thousands a second at
  // worst); the metric (orbit_rung_detours_total) is what shows it in production.
  const detoured = (from: string, to: string, code: string): void => {
    logger.debug({ from, to, code }, 'rung did not take a publish; sent to the rung above');
    observer?.detoured?.(from, to, code);
  };
  const publisher = new MessagePublisher(
    channel.publisher,
    names(config.namespace),
    config.delay,
    config.lanes,
    rungs,
    { published: (kind, seconds) => observer?.published(kind, seconds), detoured },
    configLongestHopMs(config),
  );
  return { channel, rungs, publisher };
}
