import type { Logger } from '../logging/logger';
import type { TimingOptions } from '../message/types';

/**
 * The contract between orbit and a handler author. Exported from the package root so a
 * handler written in TypeScript is fully typed.
 */

/** A message as the handler sees it. */
export interface Message {
  /** Stable across reschedules and retries. */
  readonly id: string;
  readonly lane: string;
  readonly body: Buffer;
  /** The body parsed as JSON; throws a SyntaxError if it is not JSON. */
  json<T = unknown>(): T;
  readonly priority: number;
  /** Times a handler has completed this message before. */
  readonly runs: number;
  /** Failed attempts of the current run (0 on the first try). */
  readonly attempt: number;
  /** When it was due. */
  readonly dueAt: Date;
  /** True when taken ahead of its due time by work-ahead. */
  readonly early: boolean;
  /** True when the broker delivered it before (a previous consumer did not ack it). */
  readonly redelivered: boolean;
  /** All AMQP headers, orbit's own (`x-orbit-*`) included. */
  readonly headers: Readonly<Record<string, unknown>>;
}

export interface HandlerContext {
  /** Aborted when the lane's `timeout` passes; pass it to fetch() and friends. */
  readonly signal: AbortSignal;
  /** Carries the message id and lane on every line. */
  readonly logger: Logger;
}

/** Where and when a message runs again. Anything not given stays as it was. */
export interface RescheduleOptions extends TimingOptions {
  /** New body: Buffer as is, string as UTF-8, anything else as JSON. */
  readonly body?: unknown;
  /** Move the message to another lane. */
  readonly lane?: string;
}

export interface DoneOutcome {
  readonly done: true;
}

export interface RescheduleOutcome {
  readonly reschedule: RescheduleOptions;
}

/** What a handler returns; nothing at all means done. */
export type Outcome = DoneOutcome | RescheduleOutcome | undefined | void;

export type Handler = (message: Message, ctx: HandlerContext) => Outcome | Promise<Outcome>;

/** The message is finished: ack it. */
export function done(): DoneOutcome {
  return { done: true };
}

/** Run the message again later. */
export function reschedule(options: RescheduleOptions): RescheduleOutcome {
  return { reschedule: options };
}
