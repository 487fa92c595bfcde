import type { ConfirmChannel, Message, Options } from 'amqplib';
import { PublishError } from '../errors';
import type { Logger } from '../logging/logger';
import type { ManagedChannel } from './managed-channel';

/** Taken over by `publish` (it sets `mandatory` and `persistent`): pass a fresh object. */
export interface PublishOptions extends Options.Publish {
  /** Identifies the message in `basic.return` (the AMQP `message-id` property). */
  messageId: string;
}

/** The code of a publish the broker did not confirm within the publish timeout. */
export const CONFIRM_TIMEOUT = 'CONFIRM_TIMEOUT';
/** The broker refused the message (`basic.nack`): the queue would not take it. */
export const NACKED = 'NACKED';
/** The channel closed before the broker confirmed the message: it may or may not be stored. */
export const CHANNEL_CLOSED = 'CHANNEL_CLOSED';

/**
 * How many times one publish is sent again after its channel stalled (below) before it fails
 * with `CONFIRM_TIMEOUT`.
 */
const MAX_STALL_RESENDS = 2;

/** One publish, kept until it settles: it is sent again as it is when its channel stalls. */
interface Job {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: PublishOptions;
  readonly resolve: () => void;
  readonly reject: (err: PublishError) => void;
  resends: number;
}

/** A publish awaiting its confirm. */
interface Pending {
  /** Restarted when a broker block ends: time spent blocked does not count. */
  deadline: number;
  readonly job: Job;
  readonly channel: ConfirmChannel;
  /** The queue this publish was its channel's first to (default exchange only). */
  readonly firstTo: string | undefined;
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
 *
 * **A queue that stalls the channel.** A channel's first publish to a quorum queue registers
 * the channel with the queue, and the broker's channel process waits for that (measured on
 * 3.10.8 and 4.0.5). A quorum queue that cannot commit (back from a crash without a leader,
 * docs/RELIABILITY.md) answers it only after ~65 s, with a nack: until then the channel
 * handles nothing else, so every publish behind it goes unconfirmed, whatever its queue. So
 * when a channel leaves a publish unconfirmed past the timeout and it holds unconfirmed first
 * publishes to queues, those queues are suspects: the channel is abandoned for a new one,
 * its unconfirmed publishes are sent again (at most `MAX_STALL_RESENDS` times; a copy may
 * then arrive twice, at-least-once), and each suspect's publishes go on a channel of its own
 * until one is confirmed there. A suspect that confirms nothing on its own channel fails only
 * its own publishes (`CONFIRM_TIMEOUT`, which the message publisher detours one rung up).
 */
export class ConfirmedPublisher {
  /** Outstanding publishes in send order, so the sweep finds the overdue ones first. */
  private readonly pending = new Set<Pending>();
  /** `basic.return`s not yet matched to their confirm, by return key. */
  private readonly returned = new Map<string, number>();
  private readonly drained = new WeakMap<ConfirmChannel, Promise<void>>();
  /** The queues each channel has published to through the default exchange. */
  private readonly published = new WeakMap<ConfirmChannel, Set<string>>();
  /** Queues suspected of stalling a channel, each with its own channel once one is opened. */
  private readonly suspects = new Map<string, Promise<ConfirmChannel> | undefined>();
  /** A suspect's own channel → the suspect. */
  private readonly sideQueue = new WeakMap<ConfirmChannel, string>();
  private sweeper: NodeJS.Timeout | undefined;
  private blocked: Promise<void> | undefined;
  private unblock: (() => void) | undefined;

  constructor(
    private readonly channel: ManagedChannel<ConfirmChannel>,
    private readonly timeoutMs: number,
    private readonly logger?: Logger,
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

  /** The queues whose publishes go on channels of their own (see the class comment). */
  suspectQueues(): string[] {
    return [...this.suspects.keys()];
  }

  publish(exchange: string, routingKey: string, content: Buffer, options: PublishOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => this.dispatch({ exchange, routingKey, content, options, resolve, reject, resends: 0 }));
  }

  private dispatch(job: Job): void {
    if (this.suspects.size > 0 && job.exchange === '' && this.suspects.has(job.routingKey)) {
      void this.sendAside(job);
      return;
    }
    const channel = this.blocked ? undefined : this.channel.current();
    if (channel && !this.drained.has(channel)) this.send(channel, job);
    else void this.sendWhenPossible(job);
  }

  private async sendWhenPossible(job: Job): Promise<void> {
    // Waiting out a broker alarm is not a failure: the broker asked us to pause.
    while (this.blocked) await this.blocked;
    let channel: ConfirmChannel;
    try {
      channel = await this.channel.waitForChannel(this.timeoutMs);
    } catch (err) {
      job.reject(notConnected(err));
      return;
    }
    await this.sendWhenDrained(channel, job);
  }

  /** A suspect's publish, on the suspect's own channel (opened on first need). */
  private async sendAside(job: Job): Promise<void> {
    const queue = job.routingKey;
    while (this.blocked) await this.blocked;
    let side = this.suspects.get(queue);
    if (!side) {
      side = this.openSide(queue);
      this.suspects.set(queue, side);
    }
    let channel: ConfirmChannel;
    try {
      channel = await side;
    } catch (err) {
      if (this.suspects.get(queue) === side) this.suspects.set(queue, undefined);
      job.reject(notConnected(err));
      return;
    }
    await this.sendWhenDrained(channel, job);
  }

  /** Sends once `channel`'s socket buffer has room. */
  private async sendWhenDrained(channel: ConfirmChannel, job: Job): Promise<void> {
    const wait = this.drained.get(channel);
    if (wait) await wait;
    this.send(channel, job);
  }

  private async openSide(queue: string): Promise<ConfirmChannel> {
    const side = await this.channel.openSide(this.timeoutMs);
    side.on('return', (msg: Message) => this.onReturn(msg));
    // Closed under the suspect (a lost connection): its next publish opens a new one, or
    // every publish to it would fail on the closed channel until the daemon restarts.
    // While `sideQueue` holds `side`, the suspect's entry is `side`'s own promise: `confirmedOn`
    // and `giveUpSide` delete it from `sideQueue` before they clear or reset the entry.
    side.once('close', () => {
      if (this.sideQueue.has(side) && this.suspects.has(queue)) this.suspects.set(queue, undefined);
    });
    this.sideQueue.set(side, queue);
    return side;
  }

  private send(channel: ConfirmChannel, job: Job): void {
    const { exchange, routingKey, content, options } = job;
    const firstTo = exchange === '' && this.isFirst(channel, routingKey) ? routingKey : undefined;
    const entry: Pending = { deadline: Date.now() + this.timeoutMs, job, channel, firstTo };
    this.pending.add(entry);
    this.startSweeper();
    options.mandatory = true;
    options.persistent = true;
    let hasRoom: boolean;
    try {
      hasRoom = channel.publish(exchange, routingKey, content, options, (err: unknown) => {
        // Already rejected or sent again by the sweep: nothing left to tell anyone.
        if (!this.pending.delete(entry)) return;
        if (err) job.reject(confirmFailure(err));
        else if (this.returned.size > 0 && this.takeReturn(returnKey(exchange, routingKey, options.messageId)))
          job.reject(new PublishError(`unroutable: ${exchange || '(default)'} / ${routingKey}`, { code: 'UNROUTABLE' }));
        else {
          this.confirmedOn(channel);
          job.resolve();
        }
      });
    } catch (err) {
      this.pending.delete(entry);
      job.reject(new PublishError('publish failed', { cause: err, code: 'PUBLISH_FAILED' }));
      return;
    }
    if (!hasRoom) this.waitForDrain(channel);
  }

  /** Whether this is `channel`'s first publish to `queue`. */
  private isFirst(channel: ConfirmChannel, queue: string): boolean {
    let seen = this.published.get(channel);
    if (!seen) {
      seen = new Set();
      this.published.set(channel, seen);
    }
    if (seen.has(queue)) return false;
    seen.add(queue);
    return true;
  }

  /** A confirm on a suspect's own channel clears the suspect: its publishes go on the live channel again. */
  private confirmedOn(channel: ConfirmChannel): void {
    const queue = this.sideQueue.get(channel);
    if (queue === undefined) return;
    this.sideQueue.delete(channel);
    if (this.suspects.delete(queue)) this.logger?.info({ queue }, 'queue confirmed on a channel of its own; its publishes go on the publish channel again');
    // What else was sent on it was sent before this confirm: settled within the timeout.
    setTimeout(() => void channel.close().catch(() => undefined), this.timeoutMs).unref();
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
      // While blocked no deadline runs (they restart when the block ends).
      if (!this.blocked) this.sweep(Date.now());
      if (this.pending.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, interval);
    this.sweeper.unref();
  }

  private sweep(now: number): void {
    const overdue = new Set<ConfirmChannel>();
    for (const entry of this.pending) {
      // Insertion order is deadline order: stop at the first one not yet due.
      if (entry.deadline > now) break;
      overdue.add(entry.channel);
    }
    for (const channel of overdue) {
      const queue = this.sideQueue.get(channel);
      if (queue !== undefined) this.giveUpSide(channel, queue);
      else this.stalled(channel, now);
    }
  }

  /** A suspect confirmed nothing on its own channel: its publishes fail; the next ones get a new channel. */
  private giveUpSide(channel: ConfirmChannel, queue: string): void {
    this.sideQueue.delete(channel);
    if (this.suspects.has(queue)) this.suspects.set(queue, undefined);
    this.logger?.warn({ queue, ms: this.timeoutMs }, 'queue confirmed nothing on a channel of its own (a quorum queue without a leader?); its publishes fail');
    for (const entry of this.takeAll(channel)) entry.job.reject(timedOut(this.timeoutMs));
    void channel.close().catch(() => undefined);
  }

  /** A publish on `channel` went unconfirmed past its deadline. */
  private stalled(channel: ConfirmChannel, now: number): void {
    const suspects = new Set<string>();
    for (const entry of this.pending) if (entry.channel === channel && entry.firstTo !== undefined) suspects.add(entry.firstTo);
    if (suspects.size === 0) {
      // No first publish unconfirmed: a slow broker, or one queue that confirms nothing; the overdue fail.
      for (const entry of this.pending) {
        if (entry.deadline > now) break;
        if (entry.channel !== channel) continue;
        this.pending.delete(entry);
        entry.job.reject(timedOut(this.timeoutMs));
      }
      return;
    }
    for (const queue of suspects) if (!this.suspects.has(queue)) this.suspects.set(queue, undefined);
    const entries = this.takeAll(channel);
    this.logger?.warn(
      { suspects: [...suspects], unconfirmed: entries.length, ms: this.timeoutMs },
      'publish channel stalled (a quorum queue without a leader?); its unconfirmed publishes go again on a new channel, each suspect on a channel of its own',
    );
    this.channel.abandon(channel, 'a publish went unconfirmed behind a first publish to a queue');
    for (const { job } of entries) {
      if (job.resends >= MAX_STALL_RESENDS) {
        job.reject(timedOut(this.timeoutMs));
      } else {
        job.resends++;
        this.dispatch(job);
      }
    }
  }

  /** Takes every pending publish on `channel` out of the pending set, in send order. */
  private takeAll(channel: ConfirmChannel): Pending[] {
    const taken: Pending[] = [];
    for (const entry of this.pending) {
      if (entry.channel !== channel) continue;
      this.pending.delete(entry);
      taken.push(entry);
    }
    return taken;
  }
}

function notConnected(cause: unknown): PublishError {
  return new PublishError('not connected to the broker', { cause, code: 'NOT_CONNECTED' });
}

function timedOut(ms: number): PublishError {
  return new PublishError(`no confirm within ${ms} ms`, { code: CONFIRM_TIMEOUT });
}

function returnKey(exchange: string, routingKey: string, messageId: string): string {
  return `${exchange}\u0000${routingKey}\u0000${messageId}`;
}

/**
 * A publish's callback error, as a code: amqplib calls back with `Error('message nacked')` for
 * a `basic.nack` and with `Error('channel closed')` when the channel closed with the publish
 * unconfirmed (lib/channel.js). The one place that text is read.
 */
function confirmFailure(err: unknown): PublishError {
  return err instanceof Error && err.message === 'message nacked'
    ? new PublishError('broker refused the message (nack)', { cause: err, code: NACKED })
    : new PublishError('channel closed before the broker confirmed the message', { cause: err, code: CHANNEL_CLOSED });
}
