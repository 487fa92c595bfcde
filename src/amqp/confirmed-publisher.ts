import type { ConfirmChannel, Message, Options } from 'amqplib';
import { PublishError } from '../errors';
import type { ManagedChannel } from './managed-channel';

/** Taken over by `publish` (it sets `mandatory` and `persistent`): pass a fresh object. */
export interface PublishOptions extends Options.Publish {
  /** Identifies the message in `basic.return` (the AMQP `message-id` property). */
  messageId: string;
}

/** The code of a publish the broker did not confirm within the publish timeout. */
export const CONFIRM_TIMEOUT = 'CONFIRM_TIMEOUT';

/** A publish awaiting its confirm. */
interface Pending {
  /** Restarted when a broker block ends: time spent blocked does not count. */
  deadline: number;
  readonly reject: (err: PublishError) => void;
}

/**
 * Publishes with `mandatory` and waits for the broker's confirm. A publish resolves only
 * when the broker has taken responsibility for the message: the ack-after-confirm
 * invariant rests on this. Returns (unroutable), nacks, timeouts and lost channels all
 * reject with a PublishError, so callers never ack an original on a false success.
 *
 * Backpressure: when the socket buffer is full (`publish` returns false) or the broker has
 * blocked the connection, new publishes wait instead of queueing without bound.
 *
 * The common case — connected, not blocked, buffer not full — takes a synchronous fast
 * path: no awaits, no timer per message (one sweep enforces every confirm deadline).
 */
export class ConfirmedPublisher {
  /** Outstanding publishes in send order, so the sweep finds the overdue ones first. */
  private readonly pending = new Set<Pending>();
  /** `basic.return`s not yet matched to their confirm, by return key. */
  private readonly returned = new Map<string, number>();
  private readonly drained = new WeakMap<ConfirmChannel, Promise<void>>();
  private sweeper: NodeJS.Timeout | undefined;
  private blocked: Promise<void> | undefined;
  private unblock: (() => void) | undefined;

  constructor(
    private readonly channel: ManagedChannel<ConfirmChannel>,
    private readonly timeoutMs: number,
  ) {
    channel.on('ready', (ch: ConfirmChannel) => ch.on('return', (msg: Message) => this.onReturn(msg)));
  }

  /** Called by the connection's blocked/unblocked events. */
  setBlocked(blocked: boolean): void {
    if (blocked && !this.blocked) {
      this.blocked = new Promise((resolve) => (this.unblock = resolve));
    } else if (!blocked && this.blocked) {
      // A block holds confirms back for as long as it lasts (the broker reads nothing): that
      // is a pause, not a lost confirm. Timing out would report a publish the broker then
      // takes as failed, and a settle would publish its replacement twice. The same deadline
      // for all keeps the set in deadline order.
      const deadline = Date.now() + this.timeoutMs;
      for (const entry of this.pending) entry.deadline = deadline;
      this.unblock?.();
      this.blocked = undefined;
      this.unblock = undefined;
    }
  }

  isBlocked(): boolean {
    return this.blocked !== undefined;
  }

  publish(exchange: string, routingKey: string, content: Buffer, options: PublishOptions): Promise<void> {
    const channel = this.blocked ? undefined : this.channel.current();
    if (channel && !this.drained.has(channel)) return this.send(channel, exchange, routingKey, content, options);
    return this.publishWhenPossible(exchange, routingKey, content, options);
  }

  private async publishWhenPossible(exchange: string, routingKey: string, content: Buffer, options: PublishOptions): Promise<void> {
    // Waiting out a broker alarm is not a failure: the broker asked us to pause.
    while (this.blocked) await this.blocked;
    let channel: ConfirmChannel;
    try {
      channel = await this.channel.waitForChannel(this.timeoutMs);
    } catch (err) {
      throw new PublishError('not connected to the broker', { cause: err, code: 'NOT_CONNECTED' });
    }
    const wait = this.drained.get(channel);
    if (wait) await wait;
    return this.send(channel, exchange, routingKey, content, options);
  }

  private send(channel: ConfirmChannel, exchange: string, routingKey: string, content: Buffer, options: PublishOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const entry: Pending = { deadline: Date.now() + this.timeoutMs, reject };
      this.pending.add(entry);
      this.startSweeper();
      options.mandatory = true;
      options.persistent = true;
      let hasRoom: boolean;
      try {
        hasRoom = channel.publish(exchange, routingKey, content, options, (err: unknown) => {
          // Already rejected by the sweep: nothing left to tell anyone.
          if (!this.pending.delete(entry)) return;
          if (err) reject(new PublishError('broker refused the message (nack or channel closed)', { cause: err, code: 'NACKED' }));
          else if (this.returned.size > 0 && this.takeReturn(returnKey(exchange, routingKey, options.messageId)))
            reject(new PublishError(`unroutable: ${exchange || '(default)'} / ${routingKey}`, { code: 'UNROUTABLE' }));
          else resolve();
        });
      } catch (err) {
        this.pending.delete(entry);
        reject(new PublishError('publish failed', { cause: err, code: 'PUBLISH_FAILED' }));
        return;
      }
      if (!hasRoom) this.waitForDrain(channel);
    });
  }

  private waitForDrain(channel: ConfirmChannel): void {
    if (this.drained.has(channel)) return;
    this.drained.set(
      channel,
      new Promise<void>((done) => {
        const release = () => {
          channel.removeListener('drain', release);
          channel.removeListener('close', release);
          this.drained.delete(channel);
          done();
        };
        channel.once('drain', release);
        channel.once('close', release);
      }),
    );
  }

  /** `basic.return` arrives before the confirm of the same message on the same channel. */
  private onReturn(msg: Message): void {
    const key = returnKey(msg.fields.exchange, msg.fields.routingKey, String(msg.properties.messageId ?? ''));
    this.returned.set(key, (this.returned.get(key) ?? 0) + 1);
  }

  private takeReturn(key: string): boolean {
    const n = this.returned.get(key);
    if (!n) return false;
    if (n === 1) this.returned.delete(key);
    else this.returned.set(key, n - 1);
    return true;
  }

  /** One timer for all confirm deadlines; it stops itself when nothing is outstanding. */
  private startSweeper(): void {
    if (this.sweeper) return;
    const interval = Math.max(10, Math.min(1000, Math.floor(this.timeoutMs / 4)));
    this.sweeper = setInterval(() => {
      const now = Date.now();
      // While blocked no deadline runs (they restart when the block ends).
      if (this.blocked) return;
      for (const entry of this.pending) {
        // Insertion order is deadline order: stop at the first one not yet due.
        if (entry.deadline > now) break;
        this.pending.delete(entry);
        entry.reject(new PublishError(`no confirm within ${this.timeoutMs} ms`, { code: CONFIRM_TIMEOUT }));
      }
      if (this.pending.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, interval);
    this.sweeper.unref();
  }
}

function returnKey(exchange: string, routingKey: string, messageId: string): string {
  return `${exchange}\u0000${routingKey}\u0000${messageId}`;
}
