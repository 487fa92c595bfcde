import { DelayOutOfRangeError, InvalidMessageError } from '../errors';
import type { DelayConfig, LaneConfig } from '../config/types';
import { QUORUM_HIGH_PRIORITY, type Names } from '../naming/names';
import { ladderRungs, rungIndex } from './ladder';

/**
 * Delay arithmetic for the binary TTL levels (see DESIGN.md, "The delay infrastructure").
 * Pure: no I/O, no clock — callers pass `now` when they need one.
 */

/** Longest delay the levels can express, in ms: (2^levels − 1) × unit. */
export function maxDelayMs(delay: Pick<DelayConfig, 'unitMs' | 'levels'>): number {
  return (2 ** delay.levels - 1) * delay.unitMs;
}

/** TTL of the queue of `level`: 2^level × unit. */
export function levelTtlMs(level: number, unitMs: number): number {
  return 2 ** level * unitMs;
}

/**
 * Delay in whole units, rounded up so a message never arrives before it is due.
 * @throws DelayOutOfRangeError past the maximum; InvalidMessageError when not a finite number ≥ 0.
 */
export function delayUnits(delayMs: number, delay: Pick<DelayConfig, 'unitMs' | 'levels'>): number {
  if (typeof delayMs !== 'number' || !Number.isFinite(delayMs)) {
    throw new InvalidMessageError(`delay must be a finite number of milliseconds (got ${String(delayMs)})`, {
      code: 'BAD_DELAY',
    });
  }
  if (delayMs < 0) {
    throw new InvalidMessageError(`delay must not be negative (got ${delayMs} ms)`, { code: 'BAD_DELAY' });
  }
  const units = Math.ceil(delayMs / delay.unitMs);
  if (units > 2 ** delay.levels - 1) {
    throw new DelayOutOfRangeError(
      `delay of ${delayMs} ms exceeds the maximum of ${maxDelayMs(delay)} ms ` +
        `((2^${delay.levels} − 1) × ${delay.unitMs} ms); raise delay.levels or delay.unit`,
    );
  }
  return units;
}

/** Where to publish a message so that it reaches `destination` after the delay. */
export interface DelayRoute {
  readonly exchange: string;
  readonly routingKey: string;
  /** `CC` routing keys to publish with (the ladder: the key that leads from the rung to the lane). */
  readonly cc?: readonly string[];
  /** The ladder rung the message waits in, which must exist before the publish. */
  readonly rung?: { readonly queue: string; readonly ttlMs: number };
  /** The delay actually applied (rounded up to the unit). */
  readonly delayMs: number;
  /** Delay levels the message passes through: popcount(units). */
  readonly hops: number;
}

/**
 * Routes a delay. With `tolerance` 0, the binary levels: the routing key spells the delay in
 * binary, most significant bit first (`b(levels-1). … .b0.<destination>`), and the message is
 * published to the exchange of its highest set bit. With a tolerance, the ladder: published
 * through the default exchange to the queue of its rung, with a `CC` key that the deliver
 * exchange routes to `destination` once the rung's TTL dead-letters it. A delay that rounds
 * to 0 goes straight to the deliver exchange either way.
 */
export function routeDelay(
  delayMs: number,
  destination: string,
  delay: Pick<DelayConfig, 'unitMs' | 'levels'> & Partial<Pick<DelayConfig, 'tolerance' | 'queueType'>>,
  n: Pick<Names, 'delayLevel' | 'deliver' | 'rung' | 'toDestination'>,
  /** The message's priority: on quorum delay queues, priorities 5+ wait in rungs of their own. */
  priority = 0,
  /** The ladder's rungs (units), when not the one `tolerance` spaces (a ladder thinned to the broker: `thinLadder`). */
  ladder?: readonly number[],
): DelayRoute {
  const units = delayUnits(delayMs, delay);
  const tolerance = delay.tolerance ?? 0;
  if (tolerance > 0) {
    if (units === 0) return { exchange: n.deliver, routingKey: n.toDestination(destination), delayMs: 0, hops: 0 };
    const rungs = ladder ?? ladderOf(tolerance, delay.levels);
    const rungMs = rungs[rungIndex(rungs, units)]! * delay.unitMs;
    const queue = n.rung(rungMs, delay.queueType === 'quorum' && priority >= QUORUM_HIGH_PRIORITY);
    return { exchange: '', routingKey: queue, cc: [n.toDestination(destination)], rung: { queue, ttlMs: rungMs }, delayMs: rungMs, hops: 1 };
  }
  const routingKey = `${bitWords(units, delay.levels)}.${destination}`;
  if (units === 0) return { exchange: n.deliver, routingKey, delayMs: 0, hops: 0 };
  const highest = Math.floor(Math.log2(units));
  // log2 of large integers can round up past the true bit; correct it exactly.
  const top = 2 ** highest > units ? highest - 1 : highest;
  return { exchange: n.delayLevel(top), routingKey, delayMs: units * delay.unitMs, hops: popcount(units) };
}

/**
 * The delay settings a lane's messages travel with: the namespace's, with the lane's own
 * tolerance (`lanes[].tolerance`); the namespace's for a lane the config does not have. The
 * namespace decides the layout: a lane's tolerance counts only on the ladder, and only above
 * 0 (what the config's validation enforces; a config built by hand gets the same).
 */
export function delayOfLane(delay: DelayConfig, lane: Pick<LaneConfig, 'tolerance'> | undefined): DelayConfig {
  if (lane === undefined || !(delay.tolerance > 0) || !(lane.tolerance > 0) || lane.tolerance === delay.tolerance) return delay;
  return { ...delay, tolerance: lane.tolerance };
}

/** The distinct tolerances of a config's ladders, ascending: the namespace's and each lane's (none on the binary levels). */
export function ladderTolerances(config: { readonly delay: Pick<DelayConfig, 'tolerance'>; readonly lanes: readonly Pick<LaneConfig, 'tolerance'>[] }): number[] {
  if (!(config.delay.tolerance > 0)) return [];
  return [...new Set([config.delay.tolerance, ...config.lanes.map((l) => l.tolerance).filter((t) => t > 0)])].sort((a, b) => a - b);
}

/** Every rung (in units) of any of the ladders of `tolerances`, ascending, each once. */
export function laddersOf(tolerances: readonly number[], levels: number): readonly number[] {
  if (tolerances.length === 1) return ladderOf(tolerances[0]!, levels);
  return [...new Set(tolerances.flatMap((t) => ladderOf(t, levels)))].sort((a, b) => a - b);
}

/** A config has one ladder (or one per lane tolerance); a process rarely more: keep them. */
const ladders = new Map<string, readonly number[]>();

/** The rungs (in units) for a tolerance and `delay.levels`: up to (2^levels − 1) units. */
export function ladderOf(tolerance: number, levels: number): readonly number[] {
  const key = `${tolerance}:${levels}`;
  let rungs = ladders.get(key);
  if (!rungs) {
    rungs = ladderRungs(tolerance, 2 ** levels - 1);
    ladders.set(key, rungs);
  }
  return rungs;
}

/** Delays repeat (a handler reschedules "in an hour" again and again): memoise their keys. */
const bitWordsCache = new Map<string, string>();
const BIT_WORDS_CACHE_SIZE = 4096;

/** The `levels` bit words of `units`, most significant first, joined by dots. */
export function bitWords(units: number, levels: number): string {
  const key = `${levels}:${units}`;
  let words = bitWordsCache.get(key);
  if (words === undefined) {
    // Number#toString(2) is exact for integers up to 2^53, which the config guarantees.
    words = units.toString(2).padStart(levels, '0').split('').join('.');
    if (bitWordsCache.size >= BIT_WORDS_CACHE_SIZE) bitWordsCache.clear();
    bitWordsCache.set(key, words);
  }
  return words;
}

export function popcount(units: number): number {
  let count = 0;
  for (let v = units; v > 0; v = Math.floor(v / 2)) count += v % 2;
  return count;
}

/** The destination word(s) of a routing key built by `routeDelay`. */
export function destinationOf(routingKey: string, levels: number): string {
  return routingKey.split('.').slice(levels).join('.');
}

/** Delay (ms) until `at` from `now`; never negative, so a past `at` means "now". */
export function delayUntil(at: number, now: number): number {
  return Math.max(0, at - now);
}
