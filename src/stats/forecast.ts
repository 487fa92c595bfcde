/**
 * Schedule arithmetic for `orbit stats`: when the messages of each delay level fall due, and
 * how many are expected to fall due within a horizon. Pure: no I/O, no clock.
 *
 * A message sitting in level L's queue leaves it within (0, 2^L] units (the queue's TTL),
 * then may wait in the lower levels for up to 2^L − 1 units more (one pass through each
 * level whose bit is set). So it falls due within (0, (2^(L+1) − 1)] units from now.
 */

/** Horizons of the forecast, in ms. */
export const HORIZONS_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

export type Horizon = keyof typeof HORIZONS_MS;

/** Expected messages due within each horizon, rounded to whole messages. */
export type Forecast = Record<Horizon, number>;

/**
 * A delay queue's depth: a binary level (its window follows from the level), or any delay
 * queue with its window given (a ladder rung: its messages fall due within its TTL).
 */
export interface LevelDepth {
  readonly level?: number;
  /** Its messages fall due within (0, dueWithinMs] from now; wins over `level`. */
  readonly dueWithinMs?: number;
  readonly messages: number;
}

export interface ForecastInput {
  /** Messages ready in the lane queues: due now. */
  readonly readyNow: number;
  /** Depth of each delay level (any order; levels may be left out when empty). */
  readonly levels: readonly LevelDepth[];
  /** The delay unit (`delay.unit`), in ms. */
  readonly unitMs: number;
}

/** Latest due time of a message now in level `level`, in units: 2^(level+1) − 1. */
export function levelWindowUnits(level: number): number {
  if (!Number.isInteger(level) || level < 0) throw new RangeError(`level must be a whole number ≥ 0 (got ${level})`);
  return 2 ** (level + 1) - 1;
}

/** Latest due time of a message now in level `level`, in ms from now: (2^(level+1) − 1) × unit. */
export function levelWindowMs(level: number, unitMs: number): number {
  return levelWindowUnits(level) * unitMs;
}

/**
 * Share of a level's messages expected to fall due within `horizonMs`, assuming they are
 * spread uniformly over the level's window (0, W]: min(1, horizon / W).
 */
export function fractionDueWithin(level: number, unitMs: number, horizonMs: number): number {
  if (horizonMs <= 0) return 0;
  return Math.min(1, horizonMs / levelWindowMs(level, unitMs));
}

/** Expected number of messages due within `horizonMs` (not rounded): ready ones plus each level's share. */
export function expectedDueWithin(input: ForecastInput, horizonMs: number): number {
  let total = input.readyNow;
  for (const { level, dueWithinMs, messages } of input.levels) {
    if (messages <= 0) continue;
    if (dueWithinMs !== undefined) total += messages * (horizonMs <= 0 ? 0 : Math.min(1, horizonMs / dueWithinMs));
    else if (level !== undefined) total += messages * fractionDueWithin(level, input.unitMs, horizonMs);
  }
  return total;
}

/** The forecast for the next minute, hour and day, each rounded to the nearest whole message. */
export function forecast(input: ForecastInput): Forecast {
  return {
    minute: Math.round(expectedDueWithin(input, HORIZONS_MS.minute)),
    hour: Math.round(expectedDueWithin(input, HORIZONS_MS.hour)),
    day: Math.round(expectedDueWithin(input, HORIZONS_MS.day)),
  };
}
