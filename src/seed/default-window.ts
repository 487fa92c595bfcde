/** Most logical messages `orbit seed` keeps unconfirmed by default (≈ 100 B each in the client, bodies aside). */
const MAX_DEFAULT_WINDOW = 100_000;

/**
 * `orbit seed`'s default window: 2,000 unbundled; 50 bundles of the largest bundle; on the
 * delay ladder (tolerance > 0) with bundles, {@link MAX_DEFAULT_WINDOW}, since its bundles
 * are per rung and a spread over a day uses hundreds of rungs.
 */
export function defaultSeedWindow(largestBundle: number, tolerance: number): number {
  if (largestBundle > 1 && tolerance > 0) return MAX_DEFAULT_WINDOW;
  return Math.max(2000, Math.min(MAX_DEFAULT_WINDOW, 50 * largestBundle));
}
