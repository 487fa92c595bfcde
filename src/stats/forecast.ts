/**
 * Schedule arithmetic for `orbit stats`: when the messages of each delay queue fall due, and
 * how many are expected to fall due within a horizon. Pure: no I/O, no clock.
 *
 * The broker tells only how many messages each queue holds, not when they entered it, so the
 * forecast rests on a model of what is inside a queue (below). It interpolates within each
 * queue's due window instead of counting a queue whole, or evenly over its window: the even
 * spread over (0, 2^(L+1) − 1] units that an earlier version assumed put most of a high
 * level's messages far too early, and over-estimated "due within 1 minute" 3–6 × on a day's
 * uniform spread.
 *
 * **Binary level L** (TTL T = 2^L units). A message in it has two waits left:
 * 1. the rest of its stay in L, uniform over (0, T]: messages enter the queue at a steady rate
 *    (a steady state: reschedules, retries and publishes arriving all the time), and each
 *    leaves exactly T after it entered, so the time left is the time since it entered,
 *    mirrored — uniform over the TTL;
 * 2. then one pass through each lower level whose bit its delay has set: r = delay mod 2^L
 *    units, a whole number in [0, T − 1]. Which bits are set is in each message's routing
 *    key, which a stats screen does not read; over delays that vary, each bit is as likely
 *    set as not, so r is uniform over {0, 1, …, T − 1} units.
 * So the due time is U(0, T] + r: spread over (0, 2T − 1] units like a triangle peaking at
 * T, not evenly. Of the messages in L, the share due within x units is
 * (1/T) · Σ_{r=0}^{T−1} clamp((x − r) / T, 0, 1) (`levelShareDueWithin`, in closed form).
 *
 * **Ladder rung** (TTL R, `delay.tolerance` > 0): a message waits in exactly one rung and
 * then goes to its lane, so by the same steady-state argument its due time is uniform over
 * (0, R].
 *
 * Where the model errs (measured against simulated spreads in test/unit/forecast.test.ts):
 * - right after a bulk publish (`orbit seed`) the queues have not filled steadily: each
 *   message still has (nearly) all of its TTL ahead, so the short horizons are over-estimated
 *   until the queues have turned over (up to ~2 × on the binary levels for horizons shorter
 *   than the time since the seed; more on the ladder, whose rungs are finer);
 * - one fixed interval for every message (all delays "1 h") sets the same bits in every
 *   routing key, so r is not uniform: the forecast of the short horizons can be off either
 *   way (the shares of the longer horizons stay close).
 * For a steady mix of intervals it is within a few per cent.
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
  /** A rung (no `level`): its messages fall due within (0, dueWithinMs] from now, evenly. A binary level's is ignored: its spread follows from the level. */
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
 * Share of a binary level's messages expected to fall due within `horizonMs` under the model
 * above: (1/T) · Σ_{r=0}^{T−1} clamp((x − r) / T, 0, 1) with T = 2^level and x the horizon in
 * units. Summed in closed form (T reaches 2^27): the r with r ≤ x − T count whole, those with
 * x − T < r < x by (x − r) / T, the rest not at all.
 */
export function levelShareDueWithin(level: number, unitMs: number, horizonMs: number): number {
  levelWindowUnits(level); // validates the level
  if (!(horizonMs > 0)) return 0;
  const t = 2 ** level;
  const x = horizonMs / unitMs;
  if (x >= 2 * t - 1) return 1;
  const whole = Math.min(t, Math.max(0, Math.floor(x - t) + 1));
  const from = whole;
  const to = Math.min(t - 1, Math.ceil(x) - 1);
  const n = to - from + 1;
  const part = n > 0 ? (n * x - ((from + to) * n) / 2) / t : 0;
  return Math.min(1, (whole + part) / t);
}

/** Share of a rung's messages (TTL `ttlMs`, spread evenly over it) due within `horizonMs`. */
export function rungShareDueWithin(ttlMs: number, horizonMs: number): number {
  if (!(horizonMs > 0)) return 0;
  return ttlMs <= 0 ? 1 : Math.min(1, horizonMs / ttlMs);
}

/** Expected number of messages due within `horizonMs` (not rounded): ready ones plus each queue's share. */
export function expectedDueWithin(input: ForecastInput, horizonMs: number): number {
  let total = input.readyNow;
  for (const { level, dueWithinMs, messages } of input.levels) {
    if (messages <= 0) continue;
    if (level !== undefined) total += messages * levelShareDueWithin(level, input.unitMs, horizonMs);
    else if (dueWithinMs !== undefined) total += messages * rungShareDueWithin(dueWithinMs, horizonMs);
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
