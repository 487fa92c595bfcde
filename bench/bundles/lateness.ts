import type { QueueType } from '../../src/config/types';
import { runLateness, type LatenessResult } from '../lateness/run-one';

export interface BundleLatenessJob {
  readonly kind: 'lateness';
  readonly label: string;
  readonly bundleMax: number;
  readonly lingerMs: number;
  readonly concurrency: number;
  /** Messages published (and so falling due) per second, for `seconds`. */
  readonly rate: number;
  readonly seconds: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly queueType: QueueType;
  readonly amqpUrl: string;
}

export type BundleLatenessResult = LatenessResult;

/**
 * The lateness run of bench/lateness with a bundled lane (unit 1 s): lateness is the
 * daemon's own figure (handler start − due) for every logical message, and a message that
 * waited for company in a bundle is late by up to `linger` on top of the unit rounding.
 */
export function runBundleLateness(job: BundleLatenessJob, progress: (line: string) => void): Promise<BundleLatenessResult> {
  const { bundleMax, lingerMs, kind: _kind, ...rest } = job;
  return runLateness({ ...rest, unit: '1s', bundle: { max: bundleMax, lingerMs } }, progress);
}
