/**
 * The delay ladder (DESIGN.md, "Precision"): with a relative tolerance τ > 0, every delay is
 * rounded up to one rung of a geometric ladder of fixed-TTL queues, and a message waits in
 * exactly one of them, then dead-letters straight to its lane. Pure: no I/O, no clock.
 *
 * Half of the tolerance goes to the ladder's spacing (rounding up to the next rung), the
 * other half to bundles waiting for company, so a bundle always has room to fill:
 *
 * - Rungs, in units: 1, 2, 3, … and from there each `max(previous + 1, ⌊previous × (1 + τ/2)⌋)`,
 *   the last one capped at the longest delay. Every whole number of units up to about 2/τ is
 *   a rung (short delays stay exact to the unit); above that there are ln 2 / ln(1 + τ/2)
 *   rungs per octave (69 at τ = 2 %).
 * - Rounding: a delay `d` goes to the smallest rung R with R × unit ≥ d. Either R = ⌈d/unit⌉
 *   (late by less than a unit), or R = ⌊r × (1 + τ/2)⌋ for the rung r below, with
 *   r ≤ ⌈d/unit⌉ − 1 < d/unit, so R × unit < d × (1 + τ/2). Late by less than
 *   max(unit, τ/2 × d).
 * - Waiting for company: a bundled message may be held until `latestSend`, so that it still
 *   arrives by `due + τ × d + unit + linger` (`latestRun`). Its hold is at least `linger`.
 *
 * The bound a message runs within, beside the broker's own delay in expiring and routing:
 * `due ≤ run ≤ due + τ × delay + unit + linger` (`linger` only on bundled lanes).
 */

/** Share of the tolerance the ladder's spacing uses; the rest is for bundles. */
export const ROUNDING_SHARE = 0.5;

/** The rungs of a ladder, in units, ascending, the last one `maxUnits` at most. */
export function ladderRungs(tolerance: number, maxUnits: number): readonly number[] {
  if (!(tolerance > 0) || !Number.isFinite(tolerance)) throw new RangeError(`tolerance must be > 0 (got ${tolerance})`);
  if (!Number.isSafeInteger(maxUnits) || maxUnits < 1) throw new RangeError(`maxUnits must be a whole number ≥ 1 (got ${maxUnits})`);
  const growth = 1 + tolerance * ROUNDING_SHARE;
  const rungs: number[] = [];
  for (let r = 1; ; ) {
    rungs.push(r);
    if (r >= maxUnits) return rungs;
    r = Math.min(maxUnits, Math.max(r + 1, Math.floor(r * growth)));
  }
}

/** Index of the smallest rung ≥ `units` (binary search); -1 past the top. */
export function rungIndex(rungs: readonly number[], units: number): number {
  let lo = 0;
  let hi = rungs.length - 1;
  if (hi < 0 || units > rungs[hi]!) return -1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rungs[mid]! >= units) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * `fine` (ascending, in units) thinned to the spacing of a wider `tolerance`: from its first
 * rung, each next rung is the largest of `fine` no further up than the ladder of `tolerance`
 * would step (`max(r + 1, ⌊r × (1 + τ/2)⌋)`), and its top rung is kept. Every rung kept is
 * one of `fine`'s, so the queues a thinned ladder uses have the names and TTLs the configured
 * ladder gives them: `orbit stats`, rung discovery and work-ahead find them as they are. It
 * keeps `tolerance` (`ladderTolerance`) when `fine` is spaced for a smaller one. A broker that
 * cannot keep the configured ladder's queues open gets a thinned one
 * (`topology/broker-capacity.ts`, `fitLadders`).
 */
export function thinLadder(fine: readonly number[], tolerance: number): number[] {
  if (fine.length === 0) return [];
  const growth = 1 + tolerance * ROUNDING_SHARE;
  const out = [fine[0]!];
  for (let i = 0; i < fine.length - 1; ) {
    const limit = Math.max(fine[i]! + 1, Math.floor(fine[i]! * growth));
    let j = i + 1;
    while (j + 1 < fine.length && fine[j + 1]! <= limit) j++;
    out.push(fine[j]!);
    i = j;
  }
  return out;
}

/**
 * The tolerance a ladder keeps its messages within (`allowedLatenessMs`, `holdMs`): rounding a
 * delay `d` up to the next rung makes it late by less than a unit when the rung below is one
 * unit down, and by less than `d × (b / a − 1)` between rungs `a < b` further apart. Twice the
 * largest such step, as the configured ladder spends half its tolerance on rounding
 * (`ROUNDING_SHARE`); at least `floor` (the configured tolerance, for a ladder it keeps).
 */
export function ladderTolerance(rungs: readonly number[], floor = 0): number {
  let step = 0;
  for (let i = 1; i < rungs.length; i++) {
    const a = rungs[i - 1]!;
    const b = rungs[i]!;
    if (b > a + 1) step = Math.max(step, b / a - 1);
  }
  const kept = step / ROUNDING_SHARE;
  // ⌊a × (1 + τ/2)⌋ / a − 1 ≤ τ/2 exactly; in floating point it can come out a hair above.
  return kept <= floor * (1 + 1e-9) ? floor : kept;
}

/** The latest a message of delay `delayMs` may run, after its due time: τ × delay + unit + linger. */
export function allowedLatenessMs(delayMs: number, tolerance: number, unitMs: number, lingerMs = 0): number {
  return Math.floor(tolerance * delayMs) + unitMs + lingerMs;
}

/**
 * How long a bundled message may wait for company before its bundle must be sent, so that
 * it still runs within its bound after the rung's TTL: the allowed lateness minus what the
 * rounding already spent. Always ≥ `lingerMs` (the rounding spends less than τ/2 × d + unit).
 */
export function holdMs(delayMs: number, rungMs: number, tolerance: number, unitMs: number, lingerMs: number): number {
  return Math.max(lingerMs, allowedLatenessMs(delayMs, tolerance, unitMs, lingerMs) - (rungMs - delayMs));
}

/**
 * `x-expires` of a rung queue: its TTL plus a grace of max(TTL, 1 h). An idle rung (one no
 * publisher has used for that long) is deleted by the broker, so a ladder of many rungs costs
 * only the ones in use. A publisher re-declares a rung (which renews the lease) whenever its
 * last declare is older than `rungRenewMs`, so every message it publishes expires from the
 * rung at least half the grace (≥ 30 min) before the rung could: the broker has that long to
 * dead-letter a backlog that expires at once.
 */
export function rungExpiresMs(ttlMs: number): number {
  return ttlMs + rungGraceMs(ttlMs);
}

/** Re-declare a rung before publishing to it when the last declare is older than this. */
export function rungRenewMs(ttlMs: number): number {
  return Math.floor(rungGraceMs(ttlMs) / 2);
}

function rungGraceMs(ttlMs: number): number {
  return Math.max(ttlMs, 3_600_000);
}
