import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import type { ResolvedConfig } from '../config/types';
import type { Logger } from '../logging/logger';
import { MessagePublisher } from '../publish/message-publisher';
import { names } from '../topology/names';
import { connectionName, openConnection, type ConnectionRole } from './connection';
import { ManagedChannel } from './managed-channel';
import { openPublishChannel, type PublishChannel } from './publish-channel';
import { RungDeclarer } from './rung-declarer';
import { TopologyAsserter } from './topology-asserter';

/**
 * One connection with a topology-asserting confirm channel: what the Scheduler API and the
 * one-shot CLI commands (publish, topology, dlq) need. The daemon wires its own, with
 * separate connections for consuming and publishing.
 */
export class BrokerSession {
  readonly connection: AmqpConnectionManager;
  readonly publish: PublishChannel;
  readonly publisher: MessagePublisher;
  /** Declares the topology on connect; knows the broker's version and queues that differ. */
  readonly topology: TopologyAsserter;
  /** Declares ladder rungs on first use (`delay.tolerance` > 0). */
  readonly rungs: RungDeclarer | undefined;
  private readonly extra = new Set<ManagedChannel<Channel>>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly config: ResolvedConfig,
    role: ConnectionRole,
    private readonly logger: Logger,
  ) {
    this.connection = openConnection(config.amqp, connectionName(config.namespace, role), logger);
    this.topology = new TopologyAsserter(config, logger);
    this.publish = openPublishChannel(this.connection, config, this.topology, logger);
    this.rungs = config.delay.tolerance > 0 ? new RungDeclarer(this.connection, config, logger) : undefined;
    this.publisher = new MessagePublisher(this.publish.publisher, names(config.namespace), config.delay, config.lanes, this.rungs);
  }

  /** Connects and asserts the topology; rejects with the first setup error or after `timeoutMs`. */
  static async open(config: ResolvedConfig, role: ConnectionRole, logger: Logger, timeoutMs = 30_000): Promise<BrokerSession> {
    const session = new BrokerSession(config, role, logger);
    try {
      await session.publish.ready(timeoutMs);
    } catch (err) {
      await session.close();
      throw err;
    }
    return session;
  }

  /**
   * Runs `fn` on a plain (non-confirm) channel of its own, closed afterwards — which hands
   * back every message fetched with basic.get and not acked, in its original position.
   */
  async withChannel<T>(name: string, fn: (channel: Channel) => Promise<T>, timeoutMs = 30_000): Promise<T> {
    const managed = new ManagedChannel<Channel>(this.connection, { name, confirm: false, setup: async () => {} }, this.logger);
    this.extra.add(managed);
    try {
      return await fn(await managed.ready(timeoutMs));
    } finally {
      this.extra.delete(managed);
      await managed.close();
    }
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.extra) await c.close().catch(() => undefined);
      await this.publish.channel.close().catch(() => undefined);
      await this.rungs?.close().catch(() => undefined);
      await this.connection.close();
    })();
    return this.closing;
  }

  get namespace(): string {
    return this.config.namespace;
  }
}
