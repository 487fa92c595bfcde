import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import type { ResolvedConfig } from '../config/types';
import { rungRenewMs } from '../delay/ladder';
import { BrokerError, errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import { brokerFeatures } from '../topology/broker-features';
import { rungQueueSpec } from '../topology/build';
import { names, type Names } from '../naming/names';
import { ManagedChannel } from './managed-channel';
import { isQuorumQueue, NEW_QUORUM_QUEUE_SETTLE_MS, settleNewQuorumQueues } from './new-quorum-queue';
import { probeQueues } from './probe-queues';
import { brokerVersionOf, inequivalentArgument } from './topology-asserter';
import { within } from './within';

/**
 * The code of a declare the broker has not answered (within `amqp.publishTimeout`, or still
 * pending from an earlier try): the rung is sick, not the connection, so a publisher may take
 * the next rung up instead (`MessagePublisher`).
 */
export const RUNG_UNANSWERED = 'RUNG_UNANSWERED';

/** A rung queue and its TTL. */
export interface KnownRung {
  readonly queue: string;
  readonly ttlMs: number;
}

/**
 * Declares the ladder's rung queues when first used (DESIGN.md, "Precision"): a ladder has
 * hundreds of rungs, and an idle queue costs the broker memory, so only the rungs in use
 * exist, and the broker deletes one that has been unused for its `x-expires`.
 *
 * The safety of that rests here: before a publish to a rung whose last declare (by this
 * process) is older than `rungRenewMs(ttl)`, the rung is declared again, which renews its
 * lease; every message published to it then expires from it at least half the grace before
 * the rung could be deleted. A publish waits for the declare's answer, on the same
 * connection, so the rung exists when the message arrives.
 *
 * Each declare runs on a channel of its own, not on the confirm channel that carries every
 * outstanding publish (a refused declare closes its channel), and not on one channel shared
 * by all declares either: a queue that never answers (a quorum rung recovered from a crash
 * without a leader, seen in the fault suite) would hold up every declare queued behind it,
 * and so every reschedule. A declare gives up after `amqp.publishTimeout` with
 * `RUNG_UNANSWERED`; until the broker answers it, that rung is not declared again (at most
 * one waiting channel per sick rung) and every `ensure` of it fails at once with the same
 * code, so the publisher sends its messages to the next rung up while other rungs go on.
 */
export class RungDeclarer {
  /** Rung → `performance.now()` when its last successful declare was sent. */
  private readonly declared = new Map<string, number>();
  private readonly declaring = new Map<string, Promise<void>>();
  /** Rungs known to exist: declared here, or seen on a delivery that came out of one. */
  private readonly known = new Map<string, number>();
  private readonly channel: ManagedChannel<Channel>;
  private readonly names: Names;
  /** Rungs found declared with other arguments (another queue type, say): used as they are. */
  private readonly drifted = new Set<string>();
  /** Rungs whose last declare the broker has not answered yet. */
  private readonly unanswered = new Set<string>();
  /** Told of each rung as it becomes known (`onNewRung`). */
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly connection: AmqpConnectionManager,
    private readonly config: Pick<ResolvedConfig, 'namespace' | 'delay' | 'amqp'>,
    private readonly logger: Logger,
    /** Wait after first declaring a quorum rung (`new-quorum-queue.ts`). @defaultValue NEW_QUORUM_QUEUE_SETTLE_MS */
    private readonly settleMs = NEW_QUORUM_QUEUE_SETTLE_MS,
  ) {
    this.names = names(config.namespace);
    this.channel = new ManagedChannel<Channel>(connection, { name: 'rungs', confirm: false, setup: async () => {} }, logger);
    // A broker restarted, or another node: declare again rather than trust the old leases.
    connection.on('connect', () => this.declared.clear());
  }

  /**
   * Undefined when `queue` was declared recently enough to publish to it at once; otherwise
   * a promise that settles once it is declared (the lease renewed) or could not be.
   */
  ensure(queue: string, ttlMs: number): Promise<void> | undefined {
    const at = this.declared.get(queue);
    if (at !== undefined && performance.now() - at < rungRenewMs(ttlMs)) return undefined;
    let pending = this.declaring.get(queue);
    if (!pending) {
      // No earlier declare by this process (first use, after a reconnect or an unroutable):
      // the rung may be new to the broker, so a quorum one gets time to become crash-safe.
      pending = this.declare(queue, ttlMs, at === undefined).finally(() => this.declaring.delete(queue));
      this.declaring.set(queue, pending);
    }
    return pending;
  }

  /** A publish to `queue` came back unroutable: the rung is gone; declare it before the next. */
  forget(queue: string): void {
    this.declared.delete(queue);
  }

  /** A delivery came out of `queue` (its first death queue): remember the rung for work-ahead. */
  seen(queue: string): void {
    if (this.known.has(queue)) return;
    const ttl = this.names.rungTtlOf(queue);
    if (ttl !== undefined) this.learn(queue, ttl);
  }

  /**
   * Calls `listener` whenever a rung becomes known: the rung holder consumes it at once, before
   * the message that made it known can expire out of it.
   */
  onNewRung(listener: () => void): void {
    this.listeners.push(listener);
  }

  private learn(queue: string, ttlMs: number): void {
    const isNew = !this.known.has(queue);
    this.known.set(queue, ttlMs);
    if (isNew) for (const listener of this.listeners) listener();
  }

  /** `queue` was found missing (deleted once unused): no longer known, declared before the next publish. */
  gone(queue: string): void {
    this.known.delete(queue);
    this.declared.delete(queue);
  }

  /**
   * Finds which of `candidates` (every rung of the ladder) exist: rungs other publishers
   * declared, which work-ahead and the queue metrics should see before any of their
   * messages came by. Passive declares, in parallel; missing ones are not declared.
   */
  async discover(candidates: readonly KnownRung[], timeoutMs = 30_000): Promise<number> {
    const model = this.connection.connection;
    if (!model) return 0;
    const counts = await probeQueues(model, candidates.map((c) => c.queue), timeoutMs, 4);
    let found = 0;
    for (const c of candidates) {
      if (!counts.get(c.queue)) continue;
      found++;
      this.learn(c.queue, c.ttlMs);
    }
    return found;
  }

  /** The rungs known to exist, shortest TTL (soonest due) first. */
  knownRungs(): KnownRung[] {
    return [...this.known].map(([queue, ttlMs]) => ({ queue, ttlMs })).sort((a, b) => a.ttlMs - b.ttlMs);
  }

  close(): Promise<void> {
    return this.channel.close();
  }

  /**
   * Declares `rungs` ahead of a bulk load that will use them: at most `concurrency` declares
   * at a time, then one wait for the new quorum queues among them to settle, instead of one
   * wait per rung as each first publish would. A loader that meets hundreds of new rungs one
   * after another (a seed spread over a day) would otherwise hold its window full for each:
   * 1 M messages spread over a day seeded at 17,651 msgs/s on RabbitMQ 4.0 (docs/BENCHMARKS.md).
   * Rungs declared recently are skipped. Resolves with the number declared; the first failure
   * rejects (what the publishes would have met).
   */
  async prepare(rungs: readonly KnownRung[], concurrency = 32): Promise<number> {
    const todo = rungs.filter((r) => this.ensureIsDue(r));
    let next = 0;
    let settle = false;
    const declared: Array<[string, number]> = [];
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const rung = todo[next++]!;
        const sent = performance.now();
        if (await this.assertRung(rung.queue, rung.ttlMs)) settle = true;
        declared.push([rung.queue, sent]);
        this.learn(rung.queue, rung.ttlMs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
    if (settle) await settleNewQuorumQueues(this.settleMs);
    for (const [queue, sent] of declared) this.declared.set(queue, sent);
    return declared.length;
  }

  /** Whether `ensure` would declare this rung now (never declared here, or its lease is due). */
  private ensureIsDue(rung: KnownRung): boolean {
    const at = this.declared.get(rung.queue);
    return at === undefined || performance.now() - at >= rungRenewMs(rung.ttlMs);
  }

  private async declare(queue: string, ttlMs: number, mayBeNew: boolean): Promise<void> {
    const sent = performance.now();
    const quorum = await this.assertRung(queue, ttlMs);
    if (mayBeNew && quorum) await settleNewQuorumQueues(this.settleMs);
    this.declared.set(queue, sent);
    this.learn(queue, ttlMs);
  }

  /**
   * Declares one rung (a passive check when it was found with other arguments); resolves
   * with whether it is a quorum queue declared with orbit's arguments, which may be new to
   * the broker and then needs to settle.
   */
  private async assertRung(queue: string, ttlMs: number): Promise<boolean> {
    const timeoutMs = this.config.amqp.publishTimeoutMs;
    if (this.unanswered.has(queue)) {
      throw new BrokerError(`rung ${queue} has not answered an earlier declare yet (a quorum queue without a leader?); not declared again until it does`, {
        code: RUNG_UNANSWERED,
      });
    }
    // The managed channel says when the connection is up (waiting for a reconnect) and to what broker.
    const ch = await this.channel.waitForChannel(timeoutMs);
    const broker = brokerFeatures(brokerVersionOf(ch.connection));
    // Its arguments follow from the TTL alone (a high-priority rung has the same).
    const spec = rungQueueSpec(this.config, ttlMs, broker);
    try {
      if (this.drifted.has(queue)) await this.check(queue, timeoutMs);
      else await this.onOwnChannel(queue, timeoutMs, (own) => own.assertQueue(queue, { durable: true, arguments: spec.arguments }));
    } catch (err) {
      const argument = inequivalentArgument(err);
      if (argument === undefined) {
        if (err instanceof BrokerError) throw err;
        throw new BrokerError(`cannot declare rung ${queue}: ${errorMessage(err)}`, { cause: err, code: 'TOPOLOGY_FAILED' });
      }
      // Its TTL is in its name, so only how it is stored differs: it delays just the same.
      this.drifted.add(queue);
      this.logger.info({ queue, argument }, 'rung declared with other arguments (another delay.queueType?); used as it is');
      await this.check(queue, timeoutMs);
    }
    return isQuorumQueue(spec.arguments) && !this.drifted.has(queue);
  }

  /**
   * Runs `op` on a new channel, closed once the broker answers; rejects after `timeoutMs`
   * without an answer, leaving `queue` marked unanswered until the answer (or the
   * connection's end) comes.
   */
  private async onOwnChannel(queue: string, timeoutMs: number, op: (channel: Channel) => Promise<unknown>): Promise<void> {
    const model = this.connection.connection;
    if (!model) throw new BrokerError(`cannot declare rung ${queue}: not connected`, { code: 'NOT_CONNECTED' });
    const own = await model.createChannel();
    own.on('error', () => undefined);
    this.unanswered.add(queue);
    const answer = op(own).finally(() => {
      this.unanswered.delete(queue);
      void own.close().catch(() => undefined);
    });
    await within(answer, timeoutMs, () => {
      this.logger.warn({ queue, timeoutMs }, 'rung did not answer its declare; publishes to it fail (their originals stay unacked) until it does');
      return new BrokerError(`rung ${queue} did not answer its declare within ${timeoutMs} ms (a quorum queue without a leader?)`, { code: RUNG_UNANSWERED });
    });
  }

  /**
   * Passive check on a channel of its own (a missing queue closes it), bounded like a declare:
   * a rung that does not answer fails its publishes instead of holding them.
   */
  private check(queue: string, timeoutMs: number): Promise<void> {
    return this.onOwnChannel(queue, timeoutMs, (own) => own.checkQueue(queue));
  }
}
