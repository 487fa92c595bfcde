import type { BackoffConfig } from '../config/types';

/**
 * Retry delays. The delay after the `attempt`-th failure (1-based) is
 * initial × factor^(attempt−1), capped at max, then jittered.
 *
 * Full jitter (uniform in [0, d]) is the default because it spreads a burst of failures
 * the most (AWS Architecture Blog, "Exponential Backoff And Jitter").
 */

/**
 * The un-jittered delay after the `attempt`-th failure, in whole ms: with a fractional
 * factor (1.5) the product is fractional, and rounding the jittered value instead could
 * land outside `backoffBounds`.
 */
export function baseBackoff(attempt: number, backoff: BackoffConfig): number {
  return Math.min(backoff.maxMs, Math.round(backoff.initialMs * backoff.factor ** Math.max(0, attempt - 1)));
}

/** Bounds [min, max] of `backoffDelay(attempt)` over every random draw. */
export function backoffBounds(attempt: number, backoff: BackoffConfig): [number, number] {
  const base = baseBackoff(attempt, backoff);
  switch (backoff.jitter) {
    case 'none':
      return [base, base];
    case 'equal':
      return [Math.round(base / 2), base];
    case 'full':
      return [0, base];
  }
}

/** A jittered delay within `backoffBounds`; `random` is injectable for tests. */
export function backoffDelay(attempt: number, backoff: BackoffConfig, random: () => number = Math.random): number {
  const [min, max] = backoffBounds(attempt, backoff);
  return Math.round(min + random() * (max - min));
}
