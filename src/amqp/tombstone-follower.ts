import { randomUUID } from 'node:crypto';
import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { BrokerError, errnoCode } from '../errors';
import type { Logger } from '../logging/logger';
import { readStreamEntry, streamOffsetOf, SYNC_HEADER } from '../message/tombstone-message';
import type { Tombstones } from '../message/tombstones';
import { ManagedChannel } from './managed-channel';
import { publishConfirmed } from './publish-confirmed';
import { QUEUE_UNAVAILABLE, queueUnavailable } from './topology-asserter';
import { within } from './within';

/** Stream messages handed to the follower ahead of its acks (a stream consumer must set one). */
const FOLLOW_PREFETCH = 2000;
/** How often tombstones past the retention are forgotten. */
const RETIRE_EVERY_MS = 60_000;

export interface TombstoneFollowerOptions {
  readonly connection: AmqpConnectionManager;
  /** The namespace's tombstone stream (`names.tombstones`). */
  readonly queue: string;
  readonly tombstones: Tombstones;
  readonly logger: Logger;
  /** The exchange the first cancel signals on once it has created the stream (`names.cancelSignal`). */
  readonly signal: string;
  /** How long a catch-up (writing the sync mark and reading up to it) may take. */
  readonly timeoutMs: number;
}

/**
 * Follows the namespace's tombstone stream into `tombstones`: from its first entry when the
 * daemon starts, from where it left off after a reconnect. A namespace that has never had a
 * cancel has no stream (the first cancel creates it): then there is nothing to read, and the
 * follower waits for the signal the first cancel sends once it has declared the stream, and
 * then reads it from its start. (Not a poll: each look for a missing queue is an error line
 * in the broker's log.) The signal comes 5 s before the first cancel is written (the stream's
 * settle time), and the follower reopens in 1 s. Each (re)connect is "caught up"
 * once the follower has read back a sync mark it wrote after it began reading, so everything
 * written before is known: the start waits for that before any lane consumes, and so does
 * every lane's consume channel after a reconnect (`caughtUp`), so a cancel made while a daemon
 * was down or disconnected is known before the copies it drops can run.
 */
export class TombstoneFollower {
  private readonly channel: ManagedChannel<ConfirmChannel>;
  /** The offset to resume at: one past the last entry read. */
  private next: number | undefined;
  private readonly retirer: NodeJS.Timeout;
  private readonly log: Logger;

  constructor(private readonly o: TombstoneFollowerOptions) {
    this.log = o.logger.child({ stream: o.queue });
    this.channel = new ManagedChannel<ConfirmChannel>(o.connection, { name: 'tombstones', confirm: true, setup: (ch, model) => this.follow(ch, model) }, o.logger);
    this.retirer = setInterval(() => o.tombstones.retire(), RETIRE_EVERY_MS);
    this.retirer.unref();
  }

  /** Resolves once caught up; rejects with the setup's error (a start reports it) or after `timeoutMs`. */
  async ready(timeoutMs: number): Promise<void> {
    await this.channel.ready(timeoutMs);
  }

  /** Resolves once caught up on the live channel, waiting for a reconnect's catch-up if one runs. */
  async caughtUp(timeoutMs: number): Promise<void> {
    await this.channel.waitForChannel(timeoutMs);
  }

  async close(): Promise<void> {
    clearInterval(this.retirer);
    await this.channel.close();
  }

  private async follow(ch: ConfirmChannel, model: ChannelModel): Promise<void> {
    const { queue, tombstones, timeoutMs } = this.o;
    if (!(await this.streamOrSignal(ch, model))) {
      // No cancel was ever made here (or the stream was deleted): caught up. When the signal
      // comes, this channel is closed and the next one reads the stream from its start.
      this.next = undefined;
      this.log.debug('no tombstone stream yet (no cancel made in this namespace); waiting for the first');
      return;
    }
    const token = randomUUID();
    let synced!: () => void;
    const caughtUp = new Promise<void>((resolve) => (synced = resolve));
    await ch.prefetch(FOLLOW_PREFETCH, false);
    const from = this.next ?? 'first';
    await ch.consume(
      queue,
      (msg) => {
        // null: the broker cancelled the consumer (the stream was deleted); a new channel looks for it again.
        if (!msg) return void ch.close().catch(() => undefined);
        const offset = streamOffsetOf(msg);
        if (offset !== undefined) this.next = offset + 1;
        const entry = readStreamEntry(msg);
        if (entry.kind === 'cancel') tombstones.record(entry.id, entry.before);
        else if (entry.kind === 'sync' && entry.token === token) synced();
        ch.ack(msg);
      },
      { arguments: { 'x-stream-offset': from } },
    );
    // Written after reading began: every entry before it is read before it comes back.
    await publishConfirmed(ch, '', queue, Buffer.alloc(0), { headers: { [SYNC_HEADER]: token }, persistent: true, mandatory: true }).catch((err: unknown) => {
      throw new BrokerError(`tombstone stream ${queue}: the sync mark was not confirmed`, { code: 'PUBLISH_FAILED', cause: err });
    });
    await within(caughtUp, timeoutMs, () => new BrokerError(`tombstone stream ${queue} not read up to its end within ${timeoutMs} ms; lanes wait for it`, { code: 'NOT_CONNECTED' }));
    this.log.debug({ from, next: this.next, tombstones: tombstones.size }, 'tombstone stream read up to its end');
  }

  /**
   * Binds a queue of this channel's own to the signal exchange first, then looks for the
   * stream: a stream created in between is seen either way. True when it exists.
   */
  private async streamOrSignal(ch: ConfirmChannel, model: ChannelModel): Promise<boolean> {
    const { signal, queue } = this.o;
    await ch.assertExchange(signal, 'fanout', { durable: true, autoDelete: false });
    const { queue: mine } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await ch.bindQueue(mine, signal, '');
    const seen: { state: 'looking' | 'signalled' | 'following' | 'waiting' } = { state: 'looking' };
    await ch.consume(
      mine,
      (msg) => {
        if (!msg) return;
        // Waiting: the stream exists now, and the next channel reads it from its start. Still
        // looking: noted (closing now would fail this setup), and looked at again below.
        if (seen.state === 'waiting') void ch.close().catch(() => undefined);
        else if (seen.state === 'looking') seen.state = 'signalled';
      },
      { noAck: true },
    );
    let exists = await streamExists(model, queue);
    // The signal is sent once the stream is declared: a signal during the look means a second look finds it.
    if (!exists && seen.state === 'signalled') exists = await streamExists(model, queue);
    seen.state = exists ? 'following' : 'waiting';
    return exists;
  }
}

/**
 * Whether the stream exists, by a passive declare on a channel of its own (a miss closes it).
 * One that exists but is not up yet (just after a broker restart) is a QUEUE_UNAVAILABLE
 * error, not a miss: lanes must wait for it, not run as if no cancel were made.
 */
async function streamExists(model: ChannelModel, queue: string): Promise<boolean> {
  const ch = await model.createChannel();
  ch.on('error', () => undefined);
  try {
    await ch.checkQueue(queue);
    await ch.close().catch(() => undefined);
    return true;
  } catch (err) {
    if (errnoCode(err) !== 404) throw err;
    if (queueUnavailable(err)) {
      throw new BrokerError(`tombstone stream ${queue} is not available yet (its node is recovering)`, { code: QUEUE_UNAVAILABLE, cause: err });
    }
    return false;
  }
}
