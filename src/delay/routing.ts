import { DelayOutOfRangeError, InvalidMessageError } from '../errors';
import type { DelayConfig } from '../config/types';
import type { Names } from '../topology/names';

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
  /** The delay actually applied (rounded up to the unit). */
  readonly delayMs: number;
  /** Delay levels the message passes through: popcount(units). */
  readonly hops: number;
}

/**
 * Routes a delay: the routing key spells the delay in binary, most significant bit first
 * (`b(levels-1). … .b0.<destination>`); the message is published to the exchange of its
 * highest set bit, or straight to the deliver exchange when the delay rounds to 0.
 */
export function routeDelay(
  delayMs: number,
  destination: string,
  delay: Pick<DelayConfig, 'unitMs' | 'levels'>,
  n: Pick<Names, 'delayLevel' | 'deliver'>,
): DelayRoute {
  const units = delayUnits(delayMs, delay);
  const routingKey = `${bitWords(units, delay.levels)}.${destination}`;
  if (units === 0) return { exchange: n.deliver, routingKey, delayMs: 0, hops: 0 };
  const highest = Math.floor(Math.log2(units));
  // log2 of large integers can round up past the true bit; correct it exactly.
  const top = 2 ** highest > units ? highest - 1 : highest;
  return { exchange: n.delayLevel(top), routingKey, delayMs: units * delay.unitMs, hops: popcount(units) };
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
