import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import { ManagedChannel } from '../amqp/managed-channel';
import { UNANSWERED, answeredWithin } from '../amqp/within';
import { SICK_QUEUE_REST_MS } from '../amqp/sick-queue';
import type { Logger } from '../logging/logger';
import type { QueueSpec } from '../topology/build';
import { errnoCode } from '../errors';

export interface QueueDepth {
  readonly queue: string;
  readonly role: QueueSpec['role'];
  readonly messages: number;
  /** Consumers of the queue (a removed lane's queue is stranded only while it has none). */
  readonly consumers: number;
}

/**
 * Samples queue depths with passive declares (`queue.declare passive`), so no management
 * plugin is needed. One queue missing closes the channel (404); it is reopened and the
 * other queues keep being sampled.
 */
export class QueueSampler {
  private readonly channel: ManagedChannel<Channel>;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Queues whose depth check went unanswered, and until when they are left out. */
  private readonly sickUntil = new Map<string, number>();
  private readonly log: Logger;

  constructor(
    connection: AmqpConnectionManager,
    /** The queues to sample each round (the ladder's rungs in use change over time). */
    private readonly queues: () => ReadonlyArray<Pick<QueueSpec, 'name' | 'role'>>,
    private readonly onSample: (depths: QueueDepth[]) => void,
    private readonly intervalMs: number,
    logger: Logger,
    /** Told of a queue found missing (a ladder rung the broker deleted once unused). */
    private readonly onMissing?: (queue: string) => void,
    /** How long a round may wait for the broker's answers. @defaultValue the interval, at least 5 s */
    private readonly roundTimeoutMs = Math.max(5000, intervalMs),
  ) {
    this.channel = new ManagedChannel<Channel>(connection, { name: 'queue-sampler', confirm: false, setup: async () => {} }, logger);
    this.log = logger;
  }

  start(): void {
    if (this.timer) return;
    // A first sample as soon as a channel is up, so a fresh daemon reports depths at once.
    this.channel.on('ready', () => void this.sample());
    if (this.channel.current()) void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * One round over every queue; queues that cannot be checked are left out. A round is bounded
   * (`roundTimeoutMs`): the declares go one after another on the channel, so a queue
   * that does not answer (a quorum rung without a leader) would hold this and every later round.
   * The first unanswered queue is then left out for `SICK_QUEUE_REST_MS` and the channel replaced.
   */
  async sample(): Promise<QueueDepth[]> {
    if (this.running) return [];
    this.running = true;
    try {
      const ch = this.channel.current();
      if (!ch) return [];
      let missing = false;
      const now = Date.now();
      const queues = this.queues().filter((q) => (this.sickUntil.get(q.name) ?? 0) <= now);
      const answered = new Set<string>();
      const round = Promise.all(
        queues.map(async (q): Promise<QueueDepth | undefined> => {
          try {
            const { messageCount, consumerCount } = await ch.checkQueue(q.name);
            return { queue: q.name, role: q.role, messages: messageCount, consumers: consumerCount };
          } catch (err) {
            // Only the first failure is the missing queue; the rest failed with its channel.
            if (!missing && errnoCode(err) === 404) {
              missing = true;
              this.onMissing?.(q.name);
            }
            return undefined;
          } finally {
            answered.add(q.name);
          }
        }),
      );
      const limitMs = this.roundTimeoutMs;
      const results = await answeredWithin(round, limitMs);
      if (results === UNANSWERED) {
        // No sample this round (a partial one would read as queues gone); the next goes without it.
        const sick = queues.find((q) => !answered.has(q.name))?.name;
        if (sick !== undefined) this.sickUntil.set(sick, Date.now() + SICK_QUEUE_REST_MS);
        this.log.warn({ queue: sick, ms: limitMs }, 'queue did not answer its depth check (a quorum queue without a leader?); left out of the metrics for a while');
        this.channel.abandon(ch, `a depth check of ${sick} went unanswered`);
        return [];
      }
      const depths = results.filter((d): d is QueueDepth => d !== undefined);
      this.onSample(depths);
      return depths;
    } finally {
      this.running = false;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.channel.close();
  }
}
