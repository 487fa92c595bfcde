import type { ResolvedConfig } from '../config/types';
import { ladderTolerances } from './routing';

/**
 * Waypoints: how a delay longer than a cancel can be remembered still meets every cancel
 * (README, "Cancel and replace"). Pure: no I/O, no clock.
 *
 * A daemon drops a cancelled copy when the copy reaches its lane, and forgets the cancel
 * `cancel.retention` after it was made. A copy that waited in the delay path for longer than
 * that would come back after its cancel was forgotten, and run. So no copy waits that long in
 * one go: a delay longer than `longestHopMs` is sent in hops of at most that, each ending in
 * the lane, which drops the copy if it was cancelled and otherwise sends it on, without
 * running it, for what is left (`x-orbit-waypoint`; the due time it carries is the final one).
 *
 * The hop: a copy published at `t` with a delay `h` reaches its lane by
 * `t + h × (1 + τ) + unit` (the ladder's bound; τ = 0 on the binary levels) plus the broker's
 * own delay. With `h = retention / (2 × (1 + τ))` that is `t + retention / 2 + unit`: every copy
 * that exists when a cancel is made reaches a lane while the cancel is still held, with half the
 * retention (≥ 30 s; the config keeps the retention ≥ 4 units) to spare for the unit, the broker
 * and a daemon reading the cancel late.
 */
export function longestHopMs(retentionMs: number, tolerance: number): number {
  return Math.floor(retentionMs / (2 * (1 + Math.max(0, tolerance))));
}

/** `longestHopMs` for a config: with lanes of their own tolerance, the largest one's (the shortest hop) serves every lane. */
export function configLongestHopMs(config: Pick<ResolvedConfig, 'cancel' | 'delay' | 'lanes'>): number {
  return longestHopMs(config.cancel.retentionMs, Math.max(config.delay.tolerance, ...ladderTolerances(config)));
}
