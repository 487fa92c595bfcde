import type { DelayConfig, LaneConfig } from '../config/types';
import { backoffDelay } from '../delay/backoff';
import { maxDelayMs } from '../delay/routing';
import { BadOutcomeError, errorCode, errorMessage, isBadBody, isUnrecoverable } from '../errors';
import { encodeBody } from '../message/body';
import type { Headers } from '../message/headers';
import type { DeadLetterInfo, OutgoingMessage } from '../message/types';
import { resolveSchedule } from '../publish/schedule';

/**
 * Turns what a handler did into what must happen to its message. Pure (clock and random
 * come in), so every branch is unit-tested without a broker.
 */

export type HandlerResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

/** The parts of a delivered message a decision needs. */
export interface DecisionInput {
  readonly id: string;
  readonly lane: LaneConfig;
  readonly body: Buffer;
  readonly priority: number;
  readonly runs: number;
  readonly attempt: number;
  readonly key?: string | undefined;
  /** Kept by the replacement: a cancel of the id drops it as it dropped the original. */
  readonly generation: number;
  readonly userHeaders: Headers;
}

export interface DecisionContext {
  readonly lanes: ReadonlyMap<string, LaneConfig>;
  readonly delay: DelayConfig;
  readonly now: number;
  readonly random?: () => number;
}

export type Settlement =
  | { readonly kind: 'done' }
  | { readonly kind: 'rescheduled' | 'retried'; readonly message: OutgoingMessage }
  | { readonly kind: 'dead'; readonly info: DeadLetterInfo };

export function decideOutcome(result: HandlerResult, msg: DecisionInput, ctx: DecisionContext): Settlement {
  if (!result.ok) return onFailure(result.error, msg, ctx);
  const value = result.value;
  if (value === undefined || value === null) return { kind: 'done' };
  if (typeof value === 'object' && 'done' in value && (value as { done: unknown }).done === true && !('reschedule' in value)) {
    return { kind: 'done' };
  }
  if (typeof value === 'object' && 'reschedule' in value) {
    try {
      return { kind: 'rescheduled', message: rescheduled((value as { reschedule: unknown }).reschedule, msg, ctx) };
    } catch (err) {
      return dead(new BadOutcomeError(`invalid reschedule outcome: ${errorMessage(err)}`, { cause: err }), msg, msg.attempt + 1);
    }
  }
  return dead(
    new BadOutcomeError(`handler returned ${describe(value)}; expected nothing, { done: true } or { reschedule: {...} }`),
    msg,
    msg.attempt + 1,
  );
}

function rescheduled(options: unknown, msg: DecisionInput, ctx: DecisionContext): OutgoingMessage {
  if (typeof options !== 'object' || options === null) throw new BadOutcomeError('reschedule must be an object');
  const o = options as Record<string, unknown>;
  const schedule = resolveSchedule(
    { delay: o.delay, at: o.at, lane: o.lane, priority: o.priority },
    { lanes: ctx.lanes, delay: ctx.delay, now: ctx.now, defaultLane: msg.lane.name, defaultPriority: msg.priority },
  );
  return {
    id: msg.id,
    lane: schedule.lane.name,
    // Encoded for the lane it goes to: a string on a json lane is a JSON string, as publish makes it.
    body: o.body === undefined ? msg.body : encodeBody(o.body, schedule.lane.format),
    priority: schedule.priority,
    dueAt: schedule.dueAt,
    delayMs: schedule.delayMs,
    key: msg.key,
    runs: msg.runs + 1,
    attempt: 0,
    generation: msg.generation,
    headers: msg.userHeaders,
  };
}

function onFailure(error: unknown, msg: DecisionInput, ctx: DecisionContext): Settlement {
  const failures = msg.attempt + 1;
  // By brand, not instanceof: a handler may throw the UnrecoverableError of its own copy of orbit.
  if (isUnrecoverable(error) || isBadBody(error) || failures >= msg.lane.retry.maxAttempts) {
    return dead(error, msg, failures);
  }
  // A backoff cap longer than the delay levels can hold would make the retry unpublishable.
  const delayMs = Math.min(backoffDelay(failures, msg.lane.retry.backoff, ctx.random), maxDelayMs(ctx.delay));
  return {
    kind: 'retried',
    message: {
      id: msg.id,
      lane: msg.lane.name,
      body: msg.body,
      priority: msg.priority,
      dueAt: ctx.now + delayMs,
      delayMs,
      key: msg.key,
      runs: msg.runs,
      attempt: failures,
      generation: msg.generation,
      headers: msg.userHeaders,
    },
  };
}

function dead(error: unknown, msg: DecisionInput, attempts: number): Settlement {
  return { kind: 'dead', info: { code: errorCode(error), message: errorMessage(error), lane: msg.lane.name, attempts } };
}

function describe(value: unknown): string {
  if (typeof value !== 'object') return `a ${typeof value}`;
  return Array.isArray(value) ? 'an array' : `an object with keys [${Object.keys(value as object).join(', ')}]`;
}

