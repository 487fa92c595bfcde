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
import { probeQueues } from './probe-queues';
import { brokerVersionOf, inequivalentArgument } from './topology-asserter';

/**
 * How long a publisher waits after declaring a quorum rung it had not declared before, before
 * the first publish to it. RabbitMQ (Ra 2.2 in 3.10, 2.14 in 4.0) registers a new quorum
 * queue's member in a DETS table flushed with `auto_save` 500 ms; if the node is killed before
 * the registration reaches disk, the queue comes back as a new, empty member ("Quorum queue
 * recovery: ... Starting member as a new one. Context: name_not_registered") and the messages
 * confirmed into it are gone. Measured on both versions: the youngest queue (17–42 ms old) came
 * back empty in 6 of 7 kills, none 79 ms or older did. Twice the auto_save interval leaves a
 * margin; renewals of a rung declared earlier never wait.
 */
export const QUORUM_RUNG_SETTLE_MS = 1_000;

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
 * Declares run on a channel of their own: a refused one must never close the confirm
 * channel that carries every outstanding publish.
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

  constructor(
    private readonly connection: AmqpConnectionManager,
    private readonly config: Pick<ResolvedConfig, 'namespace' | 'delay' | 'amqp'>,
    private readonly logger: Logger,
    /** @defaultValue QUORUM_RUNG_SETTLE_MS */
    private readonly settleMs = QUORUM_RUNG_SETTLE_MS,
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
    if (ttl !== undefined) this.known.set(queue, ttl);
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
      this.known.set(c.queue, c.ttlMs);
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

  private async declare(queue: string, ttlMs: number, mayBeNew: boolean): Promise<void> {
    const sent = performance.now();
    const ch = await this.channel.waitForChannel(this.config.amqp.publishTimeoutMs);
    const broker = brokerFeatures(brokerVersionOf(ch.connection));
    // Its arguments follow from the TTL alone (a high-priority rung has the same).
    const spec = rungQueueSpec(this.config, ttlMs, broker);
    try {
      if (this.drifted.has(queue)) await this.check(queue);
      else await ch.assertQueue(queue, { durable: true, arguments: spec.arguments });
    } catch (err) {
      const argument = inequivalentArgument(err);
      if (argument === undefined) {
        throw new BrokerError(`cannot declare rung ${queue}: ${errorMessage(err)}`, { cause: err, code: 'TOPOLOGY_FAILED' });
      }
      // Its TTL is in its name, so only how it is stored differs: it delays just the same.
      this.drifted.add(queue);
      this.logger.info({ queue, argument }, 'rung declared with other arguments (another delay.queueType?); used as it is');
      await this.check(queue);
    }
    if (mayBeNew && spec.arguments['x-queue-type'] === 'quorum' && !this.drifted.has(queue)) {
      await new Promise((resolve) => setTimeout(resolve, this.settleMs));
    }
    this.declared.set(queue, sent);
    this.known.set(queue, ttlMs);
  }

  /** Passive check on a channel of its own (a missing queue closes it). */
  private async check(queue: string): Promise<void> {
    const model = this.connection.connection;
    if (!model) throw new BrokerError(`cannot check rung ${queue}: not connected`, { code: 'NOT_CONNECTED' });
    const ch = await model.createChannel();
    ch.on('error', () => undefined);
    try {
      await ch.checkQueue(queue);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }
}
