import { existsSync, readFileSync } from 'node:fs';

/**
 * The lines of an audit file that a test's handler module appends to (one event a line,
 * fields separated by single spaces), each split into its fields. Empty lines are skipped;
 * a file not written yet reads as no lines.
 */
export function readAuditFields(file: string): string[][] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' '));
}
