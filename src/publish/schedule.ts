import { randomUUID } from 'node:crypto';
import type { DelayConfig, LaneConfig } from '../config/types';
import { parseDuration } from '../config/durations';
import { delayUnits, delayUntil } from '../delay/routing';
import { errorMessage, InvalidMessageError } from '../errors';

/**
 * Validation shared by every way a message enters orbit — the Scheduler API, the CLI, JSON
 * lines and a handler's `reschedule` outcome — so they refuse exactly the same things.
 * Pure: the clock comes in as `now`.
 */

/** When and where a message should run, as a caller may express it. */
export interface ScheduleInput {
  /** ms (number) or a duration string such as `"90s"`. */
  readonly delay?: unknown;
  /** A Date, epoch ms, or an ISO-8601 string. */
  readonly at?: unknown;
  readonly priority?: unknown;
  readonly lane?: unknown;
}

export interface ResolvedSchedule {
  readonly lane: LaneConfig;
  readonly delayMs: number;
  readonly dueAt: number;
  readonly priority: number;
}

export interface ScheduleContext {
  readonly lanes: ReadonlyMap<string, LaneConfig>;
  readonly delay: DelayConfig;
  readonly now: number;
  /** Used when the input names no lane (a reschedule stays in its lane). */
  readonly defaultLane?: string;
  /** Used when the input gives no priority. @defaultValue 0 */
  readonly defaultPriority?: number;
}

export function resolveSchedule(input: ScheduleInput, ctx: ScheduleContext): ResolvedSchedule {
  const laneName = input.lane ?? ctx.defaultLane;
  if (typeof laneName !== 'string' || laneName === '') throw new InvalidMessageError('lane is required', { code: 'UNKNOWN_LANE' });
  const lane = ctx.lanes.get(laneName);
  if (!lane) {
    const known = [...ctx.lanes.keys()].join(', ') || 'none configured';
    throw new InvalidMessageError(`unknown lane "${laneName}" (lanes: ${known})`, { code: 'UNKNOWN_LANE' });
  }

  if (input.delay !== undefined && input.at !== undefined) {
    throw new InvalidMessageError('give either delay or at, not both', { code: 'BAD_DELAY' });
  }
  let delayMs = 0;
  let dueAt = ctx.now;
  if (input.at !== undefined) {
    // A time already past is due now: the message did not exist at that time, so counting
    // lateness from it would put years into orbit_lateness_seconds for an `at` of 1970.
    dueAt = Math.max(parseAt(input.at), ctx.now);
    delayMs = delayUntil(dueAt, ctx.now);
  } else if (input.delay !== undefined) {
    delayMs = parseDelay(input.delay);
    dueAt = ctx.now + delayMs;
  }
  // Refuses a delay past the maximum here, before anything is published.
  delayUnits(delayMs, ctx.delay);

  const priority = input.priority ?? Math.min(ctx.defaultPriority ?? 0, lane.maxPriority);
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > lane.maxPriority) {
    throw new InvalidMessageError(
      `priority must be an integer from 0 to ${lane.maxPriority} for lane "${lane.name}" (got ${JSON.stringify(priority)})`,
      { code: 'BAD_PRIORITY' },
    );
  }
  return { lane, delayMs, dueAt, priority };
}

function parseDelay(value: unknown): number {
  if (typeof value === 'number' && value < 0) {
    throw new InvalidMessageError(`delay must not be negative (got ${value})`, { code: 'BAD_DELAY' });
  }
  try {
    return parseDuration(value, 'delay');
  } catch (err) {
    throw new InvalidMessageError(errorMessage(err), { cause: err, code: 'BAD_DELAY' });
  }
}

function parseAt(value: unknown): number {
  let ms: number;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = value;
  // Epoch ms as text too: that is how it arrives from the CLI (`--at 1767225600000`).
  else if (typeof value === 'string' && /^\s*\d+\s*$/.test(value)) ms = Number(value);
  else if (typeof value === 'string' && value.trim() !== '') ms = Date.parse(value);
  else ms = NaN;
  if (!Number.isFinite(ms)) {
    throw new InvalidMessageError(`at must be a Date, epoch ms or an ISO-8601 time (got ${JSON.stringify(value)})`, {
      code: 'BAD_DELAY',
    });
  }
  return ms;
}

/** A message id: the caller's (1–255 bytes, the AMQP limit) or a new UUID. */
export function resolveId(id: unknown, what: 'id' | 'key' = 'id'): string {
  if (id === undefined || id === null) return randomUUID();
  if (typeof id !== 'string' || id === '' || Buffer.byteLength(id) > 255) {
    throw new InvalidMessageError(`${what} must be a non-empty string of at most 255 bytes (got ${JSON.stringify(id)?.slice(0, 60)})`, {
      code: 'BAD_ID',
    });
  }
  return id;
}
