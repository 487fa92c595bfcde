/**
 * Human-friendly durations for configuration ("250ms", "90s", "1m30s") and back.
 * Pure: no I/O, no clock.
 */
import { ConfigError } from '../errors';

/** Milliseconds per unit, largest first: `formatDuration` relies on this order. */
const UNITS = [
  ['d', 86_400_000n],
  ['h', 3_600_000n],
  ['m', 60_000n],
  ['s', 1_000n],
  ['ms', 1n],
] as const;

type Unit = (typeof UNITS)[number][0];

const UNIT_MS: ReadonlyMap<string, bigint> = new Map(UNITS);
const UNIT_RANK: ReadonlyMap<string, number> = new Map(UNITS.map(([unit], i) => [unit, i]));

/** A bare number of milliseconds, e.g. `"1500"` or `"1.5"`. */
const BARE_NUMBER = /^(\d+)(?:\.(\d+))?$/;
/** One `<number><unit>` part; `ms` comes before `m` so that "250ms" is not read as "250m" + "s". */
const PART = /(\d+)(?:\.(\d+))?\s*(ms|d|h|m|s)\s*/y;

const EXPECTED = 'must be a duration: milliseconds (1500) or a number with a unit ms, s, m, h, d ("250ms", "90s", "1m30s")';

/**
 * Decimal digits times a unit, rounded up to a whole millisecond. BigInt keeps "1.1s" at
 * exactly 1100 ms, where floating point would give 1100.0000000000002 and round up to 1101.
 */
function partMs(intDigits: string, fracDigits: string | undefined, unitMs: bigint): bigint {
  const frac = fracDigits ?? '';
  const scaled = BigInt(intDigits + frac) * unitMs;
  const divisor = 10n ** BigInt(frac.length);
  return (scaled + divisor - 1n) / divisor;
}

/** A value as quoted in error messages. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value;
}

/** Returns the milliseconds, or why `value` is no duration (naming neither path nor value). */
function interpret(value: unknown): number | string {
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return EXPECTED;
    if (!Number.isFinite(value)) return 'must be finite';
    if (value < 0) return 'must not be negative';
    const ms = Math.ceil(value);
    return ms > Number.MAX_SAFE_INTEGER ? 'is too large' : ms;
  }
  if (typeof value !== 'string') return EXPECTED;

  const text = value.trim();
  if (text === '') return `must not be empty; ${EXPECTED.replace(/^must be /, 'expected ')}`;
  if (text.startsWith('-')) return 'must not be negative';

  let total: bigint;
  const bare = BARE_NUMBER.exec(text);
  if (bare) {
    total = partMs(bare[1] ?? '0', bare[2], 1n);
  } else {
    total = 0n;
    let previousRank = -1;
    PART.lastIndex = 0;
    while (PART.lastIndex < text.length) {
      const match = PART.exec(text);
      if (!match) return EXPECTED;
      const unit = match[3] as Unit;
      const rank = UNIT_RANK.get(unit) ?? 0;
      // Largest unit first, each at most once: "5s1h" or "1s1s" are more likely typos than intent.
      if (rank <= previousRank) return 'must list its units from largest to smallest, each once ("1h30m")';
      previousRank = rank;
      total += partMs(match[1] ?? '0', match[2], UNIT_MS.get(unit) ?? 1n);
    }
  }

  if (total > BigInt(Number.MAX_SAFE_INTEGER)) return 'is too large';
  return Number(total);
}

/**
 * Why `value` is not a valid duration, or `null` when it is. Names neither the path nor the
 * value, for validators (convict formats) that add both themselves.
 */
export function durationProblem(value: unknown): string | null {
  const result = interpret(value);
  return typeof result === 'string' ? result : null;
}

/**
 * Parses a configuration duration into milliseconds.
 *
 * Accepts a non-negative number of milliseconds (`1500`), a numeric string (`"1500"`), or
 * numbers with units `ms`, `s`, `m`, `h`, `d`, largest first (`"250ms"`, `"1.5s"`, `"90 s"`,
 * `"1m30s"`, `"2h"`, `"1d"`). Whitespace around numbers and units is ignored; fractions are
 * rounded up to a whole millisecond.
 *
 * @param value - the raw configuration value
 * @param path - the configuration key, named in the error (e.g. `delay.unit`)
 * @returns the duration in whole milliseconds, at most `Number.MAX_SAFE_INTEGER`
 * @throws ConfigError naming `path` and the reason when `value` is not a duration
 */
export function parseDuration(value: unknown, path?: string): number {
  const result = interpret(value);
  if (typeof result === 'number') return result;
  throw new ConfigError(`${path ?? 'duration'} ${result} (got ${show(value)})`, { path });
}

/**
 * Formats milliseconds in the compact form `parseDuration` reads back: each unit from days
 * down to milliseconds that is non-zero, e.g. `90000` → `"1m30s"`, `3600000` → `"1h"`,
 * `1500` → `"1s500ms"`, `0` → `"0ms"`.
 *
 * @param ms - a non-negative duration; a fraction is rounded up to a whole millisecond
 * @throws RangeError when `ms` is negative or not finite (a programming error, not bad config)
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot format duration ${ms}`);
  let rest = BigInt(Math.ceil(ms));
  if (rest === 0n) return '0ms';
  let out = '';
  for (const [unit, unitMs] of UNITS) {
    const count = rest / unitMs;
    if (count > 0n) {
      out += `${count}${unit}`;
      rest -= count * unitMs;
    }
  }
  return out;
}
