import { loadConfig } from '../../src/config/load';
import type { QueueType, ResolvedConfig } from '../../src/config/types';

/**
 * A config in namespace `ns` with `levels` binary delay levels (tolerance 0) of `unit` on `queueType` queues and
 * the given raw (file-shape) `lanes`, loaded with an empty environment — for tests that
 * build and inspect a topology without a broker.
 */
export function topologyConfig(levels: number, unit: string, queueType: QueueType, lanes: unknown[]): ResolvedConfig {
  return loadConfig({
    env: {},
    overrides: {
      namespace: 'ns',
      'delay.levels': String(levels),
      'delay.unit': unit,
      'delay.tolerance': '0',
      'delay.queueType': queueType,
      lanes: JSON.stringify(lanes),
    },
  });
}
