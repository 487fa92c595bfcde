import type { ResolvedConfig } from '../../src/config/types';
import { benchConfig } from './broker';

/**
 * Extra orbit config for the steady and fill benchmarks: `delay.tolerance` (`--tolerance`) and
 * whatever `--orbit-set key=value` passes through, merged over each variant's own settings.
 * Values stay strings, as on orbit's own command line (`--set`): orbit's config parses them.
 */

/** `--tolerance` values: `0`, `0.02`, `2%`, … (a fraction or a percentage). */
export function isToleranceText(text: string): boolean {
  return /^(\d+(\.\d+)?|\.\d+)%?$/.test(text.trim());
}

/** True for `0`, `0.0`, `0%`: no tolerance, the exact layout. */
export function isZeroTolerance(text: string): boolean {
  const t = text.trim().replace(/%$/, '');
  return Number(t) === 0;
}

/** Sets `value` at a dotted `path` inside `target` (creating objects on the way). */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/** `base` with every dotted key of `overrides` set over it (a deep copy; arrays are replaced whole). */
export function withOverrides(base: Record<string, unknown>, overrides: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out = structuredClone(base);
  for (const [path, value] of Object.entries(overrides)) setPath(out, path, value);
  return out;
}

export interface VariantConfig {
  readonly config: ResolvedConfig;
  /** How `delay.tolerance` was applied: `set`, or `absent` when this orbit has no such key and the tolerance is 0. */
  readonly tolerance: 'set' | 'absent';
}

/**
 * The orbit config of one variant: `settings` (the variant's own), then `--orbit-set` pairs,
 * then `delay.tolerance`. An orbit whose config does not know `delay.tolerance` (before the
 * setting exists) runs tolerance 0 without the key, since that is what it does anyway, and
 * fails any other tolerance with a message that says so.
 */
export function variantConfig(
  namespace: string,
  amqpUrl: string,
  settings: Record<string, unknown>,
  extra: Readonly<Record<string, string>>,
  tolerance: string,
): VariantConfig {
  const merged = withOverrides(settings, extra);
  try {
    return { config: benchConfig(namespace, amqpUrl, withOverrides(merged, { 'delay.tolerance': tolerance })), tolerance: 'set' };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (!/tolerance/.test(message)) throw err;
    if (isZeroTolerance(tolerance) && /does not name|unknown|not declared|not allowed/i.test(message)) {
      return { config: benchConfig(namespace, amqpUrl, merged), tolerance: 'absent' };
    }
    throw new Error(`this orbit's config rejects delay.tolerance = "${tolerance}": ${message}`, { cause: err });
  }
}
