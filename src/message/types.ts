import type { Headers } from './headers';

/**
 * When a message runs, and how urgently: what a publish and a handler's reschedule share.
 * Here, below both, so the publisher need not reach up into the worker for it.
 * Give `delay` or `at`, not both; neither means now.
 */
export interface TimingOptions {
  /** ms, or a duration string (`"90s"`, `"10m"`, `"2h"`); rounded up to `delay.unit`. */
  readonly delay?: number | string;
  /** A Date, epoch ms or ISO-8601 string; a time in the past means now. */
  readonly at?: Date | number | string;
  /** 0 … the lane's maxPriority. */
  readonly priority?: number;
}

/**
 * A logical message on its way to the broker. The publisher turns logical messages into
 * AMQP messages; today one each, with bundles many per AMQP message (DESIGN.md, "Bundles").
 */
export interface OutgoingMessage {
  readonly id: string;
  readonly lane: string;
  readonly body: Buffer;
  readonly priority: number;
  /** Epoch ms when it is due. */
  readonly dueAt: number;
  /** Delay from now, in ms, before rounding up to `delay.unit`. */
  readonly delayMs: number;
  readonly runs: number;
  readonly attempt: number;
  /** Chooses the partition of a partitioned lane; the id does when absent. */
  readonly key?: string | undefined;
  /**
   * When this message was first published (`nextGeneration()`), kept by its reschedules and
   * retries: a cancel drops the copies of its id published before it. 0: unknown (older than any cancel).
   */
  readonly generation: number;
  /** The user's own headers, carried along unchanged. */
  readonly headers: Headers;
}

/** What is recorded on a message sent to the dead-letter queue. */
export interface DeadLetterInfo {
  readonly code: string;
  readonly message: string;
  readonly lane: string;
  readonly attempts: number;
}

/** A message as it was delivered, kept verbatim for dead-lettering. */
export interface StoredMessage {
  readonly id: string;
  readonly body: Buffer;
  readonly priority: number;
  readonly headers: Headers;
  readonly contentType: string | undefined;
}
