import { unitHash } from '../lib/hash';

/**
 * The steady benchmark's two workloads: every id has its own interval, derived from a hash
 * of the id, and its handler reschedules it by that interval for ever.
 */
export type SteadyKind = 'unbundled' | 'bundled';

export interface Workload {
  readonly kind: SteadyKind;
  /** delay.unit of the variant. */
  readonly unitMs: number;
  /** The lane's bundle config (max 1: off). */
  readonly bundleMax: number;
  readonly lingerMs: number;
  /** The shortest and longest interval (ms): the delays the loop schedules. */
  readonly spanMs: readonly [number, number];
  /** One line for the report. */
  readonly describe: string;
}

export const WORKLOADS: Readonly<Record<SteadyKind, Workload>> = {
  unbundled: { kind: 'unbundled', unitMs: 1000, bundleMax: 1, lingerMs: 0, spanMs: [1000, 8000], describe: 'intervals 1–8 s (whole seconds, uniform by hash), unit 1 s, no bundles' },
  bundled: {
    kind: 'bundled',
    unitMs: 100,
    // The shipped defaults (lanes[].bundle).
    bundleMax: 200,
    lingerMs: 100,
    spanMs: [100, 100_000],
    describe: 'intervals 0.1–100 s (log-uniform by hash, time-compressed three decades), unit 100 ms, bundle { max: 200, linger: 100ms }',
  },
};

/** The id of seeded message `i`. */
export function steadyId(i: number): string {
  return `s-${i}`;
}

/** The interval (ms) of an id, for a workload: what its handler reschedules it by, every run. */
export function intervalOf(kind: SteadyKind, id: string): number {
  const u = unitHash(id);
  if (kind === 'unbundled') return 1000 * (1 + Math.floor(u * 8));
  // Log-uniform over [100 ms, 100 s].
  return Math.max(1, Math.round(100 * 1000 ** u));
}

/**
 * The delay an id is seeded with: uniform over (0, interval] by a second hash, so the ids come
 * due at the steady-state rate from the first second (through the delay path, like every later
 * run) instead of all at once. Seeding them all due now would put N messages in the lane at once:
 * under overload that first generation alone takes N / capacity seconds to work off, and none of
 * it has passed a delay queue.
 */
export function firstDelayOf(kind: SteadyKind, id: string): number {
  return Math.max(1, Math.ceil(unitHash(`${id}#first`) * intervalOf(kind, id)));
}

/**
 * What N ids ask for at most, in handler runs per second: Σ 1 / interval, each interval
 * rounded up to the unit as orbit rounds it (a tolerance rounds it a little further, so the
 * real demand is a little lower). When this exceeds what orbit sustains, the lane keeps a
 * backlog and the measured rate is orbit's capacity, not the workload's demand.
 */
export function demandPerSecond(kind: SteadyKind, n: number, unitMs: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += 1000 / (Math.ceil(intervalOf(kind, steadyId(i)) / unitMs) * unitMs);
  return sum;
}
