import { EventEmitter } from 'node:events';
import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import { BrokerError, errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import { QUEUE_UNAVAILABLE } from './topology-asserter';
import { UNANSWERED, answeredWithin } from './within';

export type RawChannel = Channel | ConfirmChannel;

export interface ManagedChannelOptions<C extends RawChannel> {
  readonly name: string;
  readonly confirm: C extends ConfirmChannel ? true : boolean;
  /**
   * Runs on every new channel before it is handed out: topology, prefetch, consume. `model`
   * is the connection the channel is on, for channels of the setup's own (topology probes).
   */
  readonly setup: (channel: C, model: ChannelModel) => Promise<void>;
  /** Pause before reopening a channel the broker closed while the connection stayed up. */
  readonly reopenDelayMs?: number;
  /**
   * How long `close` waits for the broker's close-ok. @defaultValue CHANNEL_CLOSE_TIMEOUT_MS
   */
  readonly closeTimeoutMs?: number;
}

/**
 * How long closing a channel waits for the broker to confirm it. A channel whose broker side
 * is stuck in a call to a queue that does not answer (a quorum queue without a leader holds a
 * `basic.get` unanswered, and the channel's close behind it: seen on RabbitMQ 4.0) would hold
 * a shutdown forever; past this the channel is left to the connection's close, which ends it.
 */
export const CHANNEL_CLOSE_TIMEOUT_MS = 5000;

/**
 * One channel that is re-created, and set up again, whenever it or its connection is lost.
 *
 * Written here rather than taken from amqp-connection-manager's ChannelWrapper because
 * orbit needs three things it does not give: a channel closed by a channel-level error is
 * reopened at once (the wrapper waits for a whole reconnect); callers can hold the exact
 * raw channel a delivery came on, so an ack never lands on a newer channel; and nothing is
 * buffered in memory while disconnected.
 */
export class ManagedChannel<C extends RawChannel = ConfirmChannel> extends EventEmitter {
  private channel: C | undefined;
  /**
   * The channel whose setup is running. It is already live: a consumer started in setup
   * gets deliveries, and may settle them, before setup returns; their acks belong to it.
   */
  private settingUp: C | undefined;
  private opening = false;
  private closed = false;
  private reopenTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<{ resolve: (c: C) => void; reject: (e: Error) => void }>();
  private readonly log: Logger;

  constructor(
    private readonly connection: AmqpConnectionManager,
    private readonly options: ManagedChannelOptions<C>,
    logger: Logger,
  ) {
    super();
    this.log = logger.child({ channel: options.name });
    this.onConnect = this.onConnect.bind(this);
    this.onDisconnect = this.onDisconnect.bind(this);
    connection.on('connect', this.onConnect);
    connection.on('disconnect', this.onDisconnect);
    if (connection.isConnected()) void this.open();
  }

  /** The live channel, if any. */
  current(): C | undefined {
    return this.channel;
  }

  /** True while `channel` is the live channel (set up, or being set up). */
  isCurrent(channel: RawChannel): boolean {
    return this.channel === channel || this.settingUp === channel;
  }

  /** Resolves with the live channel, waiting up to `timeoutMs` for one. */
  waitForChannel(timeoutMs: number): Promise<C> {
    if (this.closed) return Promise.reject(new BrokerError(`channel ${this.options.name} is closed`, { code: 'CLOSED' }));
    if (this.channel) return Promise.resolve(this.channel);
    return new Promise<C>((resolve, reject) => {
      const waiter = {
        resolve: (c: C) => {
          clearTimeout(timer);
          resolve(c);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new BrokerError(`no broker channel (${this.options.name}) within ${timeoutMs} ms`, { code: 'NOT_CONNECTED' }));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /**
   * Like `waitForChannel`, but a failing setup (a topology conflict, say) rejects at once
   * with its error instead of being retried silently: what start-up wants to report.
   */
  ready(timeoutMs: number): Promise<C> {
    return new Promise<C>((resolve, reject) => {
      const onSetupError = (err: unknown) => {
        this.removeListener('setupError', onSetupError);
        reject(err);
      };
      this.once('setupError', onSetupError);
      this.waitForChannel(timeoutMs).then(
        (c) => {
          this.removeListener('setupError', onSetupError);
          resolve(c);
        },
        (err: unknown) => {
          this.removeListener('setupError', onSetupError);
          reject(err);
        },
      );
    });
  }

  /**
   * A channel of its own on the live connection, neither set up nor reopened nor closed
   * here: for a call that must not share the live channel (one that may stall it). It ends
   * with the connection at the latest.
   */
  async openSide(timeoutMs: number): Promise<C> {
    await this.waitForChannel(timeoutMs);
    const model = this.connection.connection;
    if (!model) throw new BrokerError(`no connection for a side channel (${this.options.name})`, { code: 'NOT_CONNECTED' });
    const side = (this.options.confirm ? await model.createConfirmChannel() : await model.createChannel()) as C;
    side.on('error', (err: unknown) => this.log.debug({ err: errorMessage(err) }, 'side channel error'));
    return side;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reopenTimer);
    this.connection.removeListener('connect', this.onConnect);
    this.connection.removeListener('disconnect', this.onDisconnect);
    const channel = this.channel;
    this.channel = undefined;
    for (const w of this.waiters) w.reject(new BrokerError(`channel ${this.options.name} is closed`, { code: 'CLOSED' }));
    this.waiters.clear();
    if (channel) await this.closeRaw(channel);
  }

  /**
   * Gives up on `channel` when it is the live one (a call on it went unanswered, and every
   * later call would queue behind it): it is dropped and closed without waiting, and a new
   * channel is opened in its place. What was fetched on it and not yet acked goes back to its
   * queue when the broker ends it (at the latest with the connection).
   */
  abandon(channel: C, reason: string): void {
    if (this.closed || !this.isCurrent(channel)) return;
    this.log.warn({ reason }, 'channel abandoned; opening a new one');
    if (this.settingUp === channel) this.settingUp = undefined;
    if (this.channel === channel) this.lose();
    void channel.close().catch(() => undefined);
    void this.open();
  }

  private async closeRaw(channel: C): Promise<void> {
    const ms = this.options.closeTimeoutMs ?? CHANNEL_CLOSE_TIMEOUT_MS;
    // A close that fails: already closed by the broker or the connection, nothing left to release.
    const closed = await answeredWithin(channel.close().catch(() => undefined), ms);
    if (closed === UNANSWERED) this.log.warn({ ms }, 'channel did not close in time; left to the connection');
  }

  private onConnect(): void {
    void this.open();
  }

  private onDisconnect(): void {
    this.lose();
  }

  private lose(): void {
    if (!this.channel) return;
    this.channel = undefined;
    this.emit('lost');
  }

  private async open(): Promise<void> {
    const model = this.connection.connection;
    if (this.closed || this.opening || this.channel || !model) return;
    this.opening = true;
    let channel: C | undefined;
    try {
      channel = (this.options.confirm ? await model.createConfirmChannel() : await model.createChannel()) as C;
      const opened = channel;
      opened.on('error', (err: Error) => this.log.warn({ err: err.message }, 'channel error'));
      opened.on('close', () => {
        if (this.settingUp === opened) this.settingUp = undefined;
        if (this.channel === opened) this.lose();
        this.scheduleReopen();
      });
      this.settingUp = opened;
      await this.options.setup(opened, model);
      this.settingUp = undefined;
      if (this.closed) {
        await opened.close().catch(() => undefined);
        return;
      }
      this.channel = opened;
      for (const w of this.waiters) w.resolve(opened);
      this.waiters.clear();
      this.emit('ready', opened);
    } catch (err) {
      this.settingUp = undefined;
      if (err instanceof BrokerError && err.code === QUEUE_UNAVAILABLE) {
        // It passes on its own (a queue recovering after a broker restart): tried again in a
        // moment; `ready` keeps waiting, up to its timeout, instead of failing a start.
        this.log.warn({ err: errorMessage(err) }, 'channel setup waits for the broker; trying again');
      } else {
        this.log.error({ err: errorMessage(err) }, 'channel setup failed');
        this.emit('setupError', err);
      }
      // The broker closes the channel on most setup errors; make sure it is gone either way.
      await channel?.close().catch(() => undefined);
      this.scheduleReopen();
    } finally {
      this.opening = false;
    }
  }

  private scheduleReopen(): void {
    if (this.closed || this.reopenTimer || !this.connection.isConnected()) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      void this.open();
    }, this.options.reopenDelayMs ?? 1000);
  }
}
