import type { DeadLetterQueue } from '../dlq/dead-letter-queue';
import { errorMessage, OrbitError } from '../errors';
import type { Logger } from '../logging/logger';

/**
 * The most messages `<ns>.unroutable` may hold for the daemon to look through it by itself:
 * one look fetches all of them (a quorum queue keeps its order only when a look takes it
 * whole: what is handed back goes to its end), so the bound keeps a look short and small.
 */
export const UNROUTABLE_RETURN_MAX = 1000;
/**
 * The least time between two looks. A lane whose binding stays missing (unbound by hand) sends
 * its returned messages straight back to unroutable: this bounds that churn to a look per gap.
 */
export const UNROUTABLE_LOOK_GAP_MS = 10_000;
/** How long a look waits for every lane to consume again (after a reconnect) before it gives up until the next sample. */
const READY_WAIT_MS = 30_000;
const READY_POLL_MS = 250;

/**
 * Pure: what a sampled depth of `<ns>.unroutable` calls for. `left` is what the last look
 * left there (messages of lanes this daemon does not have): only growth past it is new.
 */
export function unroutableLook(depth: number, left: number, max: number): 'nothing new' | 'look' | 'too many' {
  if (depth <= left) return 'nothing new';
  return depth > max ? 'too many' : 'look';
}

export interface UnroutableReturnOptions {
  /** The dead-letter queues over this daemon's lanes: `replay` returns what is theirs. */
  readonly dlq: Pick<DeadLetterQueue, 'replay' | 'queueName'>;
  /** Whether every lane consumes: after a reconnect, once their bindings are asserted again. */
  readonly ready: () => boolean;
  readonly logger: Logger;
  /** A look sent `messages` AMQP messages (a bundle counts once) back to their lanes: `orbit_unroutable_returned_total`. */
  readonly returned?: (messages: number) => void;
  /** @defaultValue UNROUTABLE_RETURN_MAX */
  readonly max?: number;
  /** @defaultValue UNROUTABLE_LOOK_GAP_MS */
  readonly gapMs?: number;
}

/**
 * Sends messages of this daemon's lanes that landed in `<ns>.unroutable` back to their lanes.
 *
 * Why: a rung dead-letters into the deliver exchange, whose alternate exchange catches what
 * it cannot route. A broker restarting after a crash can expire a quorum rung's messages
 * before it has restored the bindings of the classic lane queues (seen on RabbitMQ 4.0 in the
 * fault suite: a bundle of the lane landed in unroutable). Nothing is lost, but it would wait
 * there for an operator; the daemon whose lane it is can route it now, so it does.
 *
 * Driven by the queue sampler: a look when the queue holds more than the last look left
 * (every lane consuming first), the way `orbit dlq replay --queue unroutable` does it — each
 * message removed only once its copy is confirmed in its lane, the rest handed back in place.
 */
export class UnroutableReturn {
  private left = 0;
  private running: Promise<void> | undefined;
  private stopped = false;
  private disabled = false;
  private warnedTooMany = false;
  private lastLookAt = Number.NEGATIVE_INFINITY;
  private readonly max: number;
  private readonly gapMs: number;

  constructor(private readonly o: UnroutableReturnOptions) {
    this.max = o.max ?? UNROUTABLE_RETURN_MAX;
    this.gapMs = o.gapMs ?? UNROUTABLE_LOOK_GAP_MS;
  }

  /** The sampler read `depth` messages in `<ns>.unroutable`. */
  sampled(depth: number): void {
    // During a look the queue's depth says nothing (what it fetched is unacked, not counted):
    // its result sets `left`, and the sample after it compares with that.
    if (this.stopped || this.disabled || this.running) return;
    if (depth <= this.max) this.warnedTooMany = false;
    const verdict = unroutableLook(depth, this.left, this.max);
    if (verdict === 'nothing new') {
      // Taken meanwhile (a replay, a purge): growth from here is new.
      this.left = depth;
      return;
    }
    if (verdict === 'too many') {
      if (!this.warnedTooMany) {
        this.warnedTooMany = true;
        this.o.logger.warn(
          { queue: this.o.dlq.queueName('unroutable'), messages: depth, max: this.max },
          `${this.o.dlq.queueName('unroutable')} holds ${depth} message(s), more than the daemon looks through by itself (${this.max}): ` +
            '`orbit dlq list --queue unroutable` shows them, `orbit dlq replay --queue unroutable` sends those of configured lanes back',
        );
      }
      return;
    }
    // Too soon after the last look: a later sample (the depth still above `left`) looks.
    if (Date.now() - this.lastLookAt < this.gapMs) return;
    this.lastLookAt = Date.now();
    this.running = this.look().finally(() => {
      this.running = undefined;
    });
  }

  /** Idempotent: no new look; resolves when the one running ended (its channel closes with it). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async look(): Promise<void> {
    const queue = this.o.dlq.queueName('unroutable');
    const deadline = Date.now() + READY_WAIT_MS;
    while (!this.o.ready()) {
      if (this.stopped || Date.now() > deadline) return;
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS).unref());
    }
    if (this.stopped) return;
    try {
      const r = await this.o.dlq.replay('unroutable', { scanLimit: this.max });
      this.left = r.left;
      if (r.replayed > 0) {
        this.o.returned?.(r.replayed);
        this.o.logger.warn(
          { queue, returned: r.replayed, left: r.left, otherLanes: r.unknownLanes },
          `sent ${r.replayed} message(s) of this daemon's lanes from ${queue} back to their lanes (routed while a lane's binding was missing: a broker restarting, a lane queue deleted)`,
        );
      }
      if (r.badBundles > 0) this.o.logger.warn({ queue, badBundles: r.badBundles }, `${queue} holds bundle(s) that do not decode: left there (\`orbit dlq list --queue unroutable\`)`);
    } catch (err) {
      if (err instanceof OrbitError && err.code === 'QUEUE_NEEDS_MIGRATION') {
        // A quorum unroutable queue without orbit's delivery limit: every look would count.
        this.disabled = true;
        this.o.logger.warn({ queue, err: err.message }, `${queue} is not looked through by the daemon`);
        return;
      }
      // A lost channel or connection: the messages went back; the next sample looks again.
      this.o.logger.debug({ queue, err: errorMessage(err) }, 'unroutable look failed; tried again at the next sample');
    }
  }
}
