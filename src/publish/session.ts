import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel, ChannelModel } from 'amqplib';
import { closeConnection, connectionName, openConnection, type ConnectionRole } from '../amqp/connection';
import { CHANNEL_CLOSE_TIMEOUT_MS, ManagedChannel } from '../amqp/managed-channel';
import { publishConfirmed } from '../amqp/publish-confirmed';
import { withTemporaryChannel } from '../amqp/temporary-channel';
import type { PublishChannel } from '../amqp/publish-channel';
import type { RungDeclarer } from '../amqp/rung-declarer';
import { TopologyAsserter } from '../amqp/topology-asserter';
import type { ResolvedConfig } from '../config/types';
import { BrokerError } from '../errors';
import { tombstoneStreamSpec } from '../topology/build';
import { names } from '../naming/names';
import type { Logger } from '../logging/logger';
import type { MessagePublisher } from './message-publisher';
import { fitLadderToBroker } from './ladder-fit';
import { openPublisher } from './open-publisher';
import type { LadderFit } from '../topology/broker-capacity';

/**
 * Tells daemons that the tombstone stream exists (`amqp/tombstone-follower.ts` binds a queue
 * of its own to this exchange while there is none). Confirmed: once this resolves, every
 * follower connected now has the signal; one that is not reads the stream when it reconnects.
 */
async function signalTombstoneStream(model: ChannelModel, namespace: string): Promise<void> {
  const exchange = names(namespace).cancelSignal;
  const ch = await model.createConfirmChannel();
  ch.on('error', () => undefined);
  try {
    await ch.assertExchange(exchange, 'fanout', { durable: true, autoDelete: false });
    await publishConfirmed(ch, exchange, '', Buffer.alloc(0), {}).catch((err: unknown) => {
      throw new BrokerError(`the signal on ${exchange} was not confirmed`, { code: 'PUBLISH_FAILED', cause: err });
    });
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/**
 * What a session does to the namespace's topology on each (re)connect:
 * - `declare`: declares all of it, creating what is missing (publish, seed, topology, the
 *   Scheduler API);
 * - `existing`: the same, but only for a namespace that exists: NamespaceNotFoundError
 *   otherwise (`orbit migrate`, which rewrites queues but must not start a namespace);
 * - `passive`: declares nothing; checks that the namespace exists and compares the queues
 *   named in `inspect` (commands that only look: stats, dlq, migrate --dry-run).
 */
export type TopologyMode = 'declare' | 'existing' | 'passive';

export interface SessionOptions {
  /** @defaultValue 'declare' */
  readonly topology?: TopologyMode;
  /**
   * `passive`: queues the command will look into, compared with orbit's arguments when they
   * exist (finding queues `dlq list` must not look into). @defaultValue none
   */
  readonly inspect?: readonly string[];
  /** How long the first connection may take. @defaultValue `amqp.connectTimeout` */
  readonly connectTimeoutMs?: number;
  /** How long the topology setup may take once connected. @defaultValue 30 s */
  readonly setupTimeoutMs?: number;
}

/**
 * One connection with a topology-asserting confirm channel: what the Scheduler API and the
 * one-shot CLI commands (publish, topology, dlq) need. The daemon has separate connections
 * for consuming and publishing, but wires its publishing side the same way (`openPublisher`).
 */
export class BrokerSession {
  readonly connection: AmqpConnectionManager;
  readonly publish: PublishChannel;
  readonly publisher: MessagePublisher;
  /** Declares the topology on connect; knows the broker's version and queues that differ. */
  readonly topology: TopologyAsserter;
  /** Declares ladder rungs on first use (`delay.tolerance` > 0). */
  readonly rungs: RungDeclarer | undefined;
  /**
   * Settles once the publisher's ladders are fitted to the broker's file handles, or found to
   * need no fitting (`ladder-fit.ts`): read in the background, awaited before a bulk load
   * declares its rungs. A session that only looks (`passive`) asks nothing.
   */
  readonly ladderFitted: Promise<LadderFit | undefined>;
  private readonly extra = new Set<ManagedChannel<Channel>>();
  private closing: Promise<void> | undefined;
  private tombstoneStream: Promise<void> | undefined;

  private constructor(
    private readonly config: ResolvedConfig,
    role: ConnectionRole,
    private readonly logger: Logger,
    options: SessionOptions,
  ) {
    this.connection = openConnection(config.amqp, connectionName(config.namespace, role), logger);
    this.topology = new TopologyAsserter(config, logger);
    const asserter = this.topology;
    const inspect = options.inspect ?? [];
    const setup: Record<TopologyMode, (model: ChannelModel) => Promise<void>> = {
      declare: (model) => asserter.assert(model),
      existing: async (model) => {
        await asserter.inspect(model);
        await asserter.assert(model);
      },
      passive: (model) => asserter.inspect(model, inspect),
    };
    const mode = setup[options.topology ?? 'declare'];
    const stack = openPublisher(this.connection, config, { assert: (model) => mode(model) }, logger);
    this.publish = stack.channel;
    this.rungs = stack.rungs;
    this.publisher = stack.publisher;
    this.ladderFitted = options.topology === 'passive' ? Promise.resolve(undefined) : fitLadderToBroker(config, stack.publisher, logger);
  }

  /**
   * Connects and sets up the topology as `options.topology` says; rejects with the first
   * setup error, at once when the broker refuses the login or vhost, or after the timeouts.
   * A number (the Scheduler's `connectTimeoutMs`) bounds the connect and the setup alike.
   */
  static async open(config: ResolvedConfig, role: ConnectionRole, logger: Logger, options: number | SessionOptions = {}): Promise<BrokerSession> {
    const opts: SessionOptions = typeof options === 'number' ? { connectTimeoutMs: options, setupTimeoutMs: options } : options;
    const session = new BrokerSession(config, role, logger, opts);
    try {
      await session.publish.ready(opts.setupTimeoutMs ?? 30_000, opts.connectTimeoutMs);
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
  withChannel<T>(name: string, fn: (channel: Channel) => Promise<T>, timeoutMs = 30_000): Promise<T> {
    return withTemporaryChannel(this.connection, name, this.logger, fn, { timeoutMs, open: this.extra });
  }

  /**
   * Declares the namespace's tombstone stream before the first cancel: once per session, and
   * when it creates the stream it resolves only after the settle time (`new-quorum-queue.ts`),
   * so no cancel is written to a stream a broker crash could lose. Daemons find it meanwhile.
   */
  ensureTombstoneStream(): Promise<void> {
    this.tombstoneStream ??= (async () => {
      const model = this.connection.connection;
      if (!model) throw new BrokerError('not connected to the broker', { code: 'NOT_CONNECTED' });
      const stream = tombstoneStreamSpec(this.config);
      // Daemons that started while there was no stream wait for this signal to read it: sent
      // once it is declared, before the settle, so they follow it before the first cancel.
      await this.topology.assert(model, () => ({ exchanges: [], queues: [stream], bindings: [] }), () => signalTombstoneStream(model, this.config.namespace));
    })().catch((err: unknown) => {
      this.tombstoneStream = undefined;
      throw err;
    });
    return this.tombstoneStream;
  }

  /** Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.extra) await c.close().catch(() => undefined);
      await this.publish.channel.close().catch(() => undefined);
      await this.rungs?.close().catch(() => undefined);
      // Bounded: a channel stuck in a call to a queue that does not answer holds the broker's
      // close-ok (amqp/confirmed-publisher.ts); past the bound the socket is cut.
      await closeConnection(this.connection, CHANNEL_CLOSE_TIMEOUT_MS, this.logger);
    })();
    return this.closing;
  }

  get namespace(): string {
    return this.config.namespace;
  }
}
