import type { LaneConfig } from '../../src/config/types';

/**
 * A complete LaneConfig with the documented defaults (what `loadConfig` gives for
 * `{ "name": "lane" }`), for tests that build lanes by hand; `overrides` replace whole keys.
 */
export function laneConfig(overrides: Partial<LaneConfig> = {}): LaneConfig {
  return {
    name: 'lane',
    concurrency: 10,
    maxPriority: 9,
    handler: null,
    httpHandler: null,
    timeoutMs: 30_000,
    format: 'raw',
    retry: { maxAttempts: 5, backoff: { initialMs: 1000, factor: 2, maxMs: 3_600_000, jitter: 'full' } },
    partitions: 1,
    queueType: 'classic',
    workAhead: { enabled: true, idleMs: 5000, maxAdvanceMs: 600_000, maxRate: 100 },
    rateLimit: null,
    bundle: { max: 200, lingerMs: 100, maxBytes: 262_144 },
    tolerance: 0.02,
    ...overrides,
  };
}
