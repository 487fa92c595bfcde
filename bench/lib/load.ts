import os from 'node:os';

/** 1, 5 and 15 minute load averages, rounded: shows whether something else ran alongside. */
export function loadAverage(): number[] {
  return os.loadavg().map((l) => Math.round(l * 100) / 100);
}

export function describeLoad(start: readonly number[], end: readonly number[]): string {
  return `load (1/5/15 min) at start ${start.join(' / ')}, at end ${end.join(' / ')} on ${os.cpus().length} cores`;
}
