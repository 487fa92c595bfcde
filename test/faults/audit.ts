/**
 * The fault suite's audit sink and its bookkeeping.
 *
 * Every handler run records `start <id> <runs> <t> <redelivered> <pid>` when it begins and
 * `end <id> <runs> <t> <pid>` when it returns — appended to a file by spawned daemons
 * (test/faults/fixtures/audit-handler.js) or kept in memory by in-process ones. A scenario
 * then compares what ran against what was published: every published id must complete
 * each of its runs 0 … R-1 at least once (an `end` line: the handler finished that run),
 * and any extra start of the same (id, runs) is a duplicate.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Handler, Message } from '../../src';
import { readAuditFields } from '../helpers/audit';

export interface AuditEvent {
  readonly kind: 'start' | 'end';
  readonly id: string;
  readonly runs: number;
  /** Date.now() when written. */
  readonly t: number;
  /** `start` only: the broker's redelivered flag. */
  readonly redelivered: boolean;
  /** Process that ran the handler (0 for in-process daemons). */
  readonly pid: number;
  /** `start` of an in-process daemon only: the due time the message carried (epoch ms), to tell a copy from a fork. */
  readonly due?: number;
}

/** Reads a file audit; a half-written last line (a SIGKILL mid-write) is ignored. */
export function readAuditFile(file: string): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (const [kind, id, runs, t, a, b] of readAuditFields(file)) {
    if ((kind !== 'start' && kind !== 'end') || !id || runs === undefined || t === undefined) continue;
    if (kind === 'start' && b === undefined) continue;
    out.push({
      kind,
      id,
      runs: Number(runs),
      t: Number(t),
      redelivered: kind === 'start' && a === '1',
      pid: Number(kind === 'start' ? b : a) || 0,
    });
  }
  return out;
}

/** The in-memory audit for in-process daemons. */
export class MemoryAudit {
  readonly events: AuditEvent[] = [];

  /**
   * A handler that records start and end around `body`; `total` is the number of runs each
   * message makes (it reschedules after `delayMs` until then).
   */
  handler(options: { total: number; delayMs: number | (() => number); sleepMs?: () => number }): Handler {
    return async (m: Message) => {
      this.events.push({ kind: 'start', id: m.id, runs: m.runs, t: Date.now(), redelivered: m.redelivered, pid: 0, due: m.dueAt.getTime() });
      const sleep = options.sleepMs?.() ?? 0;
      if (sleep > 0) await new Promise((r) => setTimeout(r, sleep));
      this.events.push({ kind: 'end', id: m.id, runs: m.runs, t: Date.now(), redelivered: false, pid: 0 });
      const delay = typeof options.delayMs === 'function' ? options.delayMs() : options.delayMs;
      return m.runs + 1 < options.total ? { reschedule: { delay } } : undefined;
    };
  }

  get starts(): number {
    return this.events.reduce((n, e) => n + (e.kind === 'start' ? 1 : 0), 0);
  }

  get ends(): number {
    return this.events.length - this.starts;
  }
}

export interface Tally {
  /** Messages published (and confirmed). */
  readonly published: number;
  /** Handler runs the workload needs: published × runs per message. */
  readonly expectedRuns: number;
  /** Handler runs that started (duplicates included). */
  readonly processed: number;
  /** Expected (id, run) pairs that never completed. */
  readonly lost: number;
  /** Handler starts beyond the first for an (id, run) pair. */
  readonly duplicates: number;
  /** Ids with at least one duplicate start. */
  readonly duplicatedIds: readonly string[];
  /** Ids that ran although nobody published them (must be empty). */
  readonly strangers: readonly string[];
}

/** `id → runs each id must complete`; every id must complete runs 0 … total-1. */
export function tally(expected: ReadonlyMap<string, number>, events: readonly AuditEvent[]): Tally {
  const starts = new Map<string, number>();
  const ends = new Set<string>();
  const strangers = new Set<string>();
  for (const e of events) {
    if (!expected.has(e.id)) {
      strangers.add(e.id);
      continue;
    }
    const key = `${e.id} ${e.runs}`;
    if (e.kind === 'start') starts.set(key, (starts.get(key) ?? 0) + 1);
    else ends.add(key);
  }
  let lost = 0;
  let duplicates = 0;
  let expectedRuns = 0;
  const duplicatedIds = new Set<string>();
  for (const [id, total] of expected) {
    for (let r = 0; r < total; r++) {
      expectedRuns++;
      const key = `${id} ${r}`;
      if (!ends.has(key)) lost++;
      const n = starts.get(key) ?? 0;
      if (n > 1) {
        duplicates += n - 1;
        duplicatedIds.add(id);
      }
    }
    // Runs past the last one would mean a message outlived its `done`.
    for (let r = total; starts.has(`${id} ${r}`); r++) {
      duplicates += starts.get(`${id} ${r}`)!;
      duplicatedIds.add(id);
    }
  }
  const processed = events.filter((e) => e.kind === 'start' && expected.has(e.id)).length;
  return {
    published: expected.size,
    expectedRuns,
    processed,
    lost,
    duplicates,
    duplicatedIds: [...duplicatedIds].sort(),
    strangers: [...strangers].sort(),
  };
}

/** True when every expected (id, run) has an `end` event. */
export function complete(expected: ReadonlyMap<string, number>, events: readonly AuditEvent[]): boolean {
  return tally(expected, events).lost === 0;
}

/** How many of the expected runs have completed (an `end` per distinct pair). */
export function completedRuns(events: readonly AuditEvent[]): number {
  const seen = new Set<string>();
  for (const e of events) if (e.kind === 'end') seen.add(`${e.id} ${e.runs}`);
  return seen.size;
}

/** `n` ids with the same total: `prefix-0` … */
export function expectIds(prefix: string, n: number, total: number): Map<string, number> {
  return new Map(Array.from({ length: n }, (_, i) => [`${prefix}-${i}`, total] as const));
}

export interface ScenarioResult extends Omit<Tally, 'duplicatedIds' | 'strangers'> {
  readonly scenario: string;
  /** Ids with a duplicate, counted. */
  readonly duplicatedIds: number;
  /** Time from the end of the fault until handlers ran again, ms (worst case if several faults). */
  readonly recoveryMs: number | null;
  /** Wall time of the scenario's workload, ms. */
  readonly durationMs: number;
  /** What the fault was, in a few words. */
  readonly fault: string;
  readonly notes?: string;
}

/** This run's results dir (global-setup.js names the run; a file run on its own writes to `adhoc`). */
const RESULTS_DIR = join(__dirname, '.results', process.env.ORBIT_FAULT_RUN ?? 'adhoc');

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

export function formatLine(r: ScenarioResult): string {
  const rec = r.recoveryMs === null ? '—' : `${(r.recoveryMs / 1000).toFixed(2)} s`;
  return (
    `FAULT ${r.scenario.padEnd(44)} published ${String(r.published).padStart(5)}  runs ${String(r.expectedRuns).padStart(5)}  ` +
    `processed ${String(r.processed).padStart(5)}  lost ${r.lost}  duplicated ${r.duplicates} (${r.duplicatedIds} ids)  recovery ${rec}  ` +
    `total ${(r.durationMs / 1000).toFixed(1)} s`
  );
}

/**
 * Prints the scenario's table line and stores it for the global teardown, which merges every
 * scenario of the run into test/faults/results.json.
 */
export function report(result: ScenarioResult): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const entry = { ...result, ranAt: new Date().toISOString() };
  writeFileSync(join(RESULTS_DIR, `${slug(result.scenario)}.json`), `${JSON.stringify(entry, null, 2)}\n`);
  // Straight to stdout as well as through jest's console, so a CI log shows it in order.
  process.stdout.write(`${formatLine(result)}\n`);
}

/** Builds a result from a tally. */
export function result(
  scenario: string,
  fault: string,
  t: Tally,
  timing: { recoveryMs: number | null; durationMs: number },
  notes?: string,
): ScenarioResult {
  return {
    scenario,
    fault,
    published: t.published,
    expectedRuns: t.expectedRuns,
    processed: t.processed,
    lost: t.lost,
    duplicates: t.duplicates,
    duplicatedIds: t.duplicatedIds.length,
    recoveryMs: timing.recoveryMs,
    durationMs: timing.durationMs,
    ...(notes === undefined ? {} : { notes }),
  };
}

/** First `start` at or after `t`, or undefined. */
export function firstStartAfter(events: readonly AuditEvent[], t: number): AuditEvent | undefined {
  let first: AuditEvent | undefined;
  for (const e of events) if (e.kind === 'start' && e.t >= t && (!first || e.t < first.t)) first = e;
  return first;
}

/** Skips the fault-suite scenarios unless run by `npm run test:faults` (jest.faults.config.js sets ORBIT_FAULT_SUITE). */
export const faultSuite = process.env.ORBIT_FAULT_SUITE === '1';
export const describeFaults: jest.Describe = faultSuite ? describe : describe.skip;
