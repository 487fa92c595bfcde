import { parseDuration } from '../../src/config/durations';
import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { runInChild } from '../lib/isolate';
import { describeLoad, loadAverage } from '../lib/load';
import { round } from '../lib/stats';
import { formatFixed, formatInt, renderTable } from '../lib/table';
import { levelsFor, runLateness, type LatenessJob, type LatenessResult } from './run-one';

const RUN_ONE_SCRIPT = require.resolve('./run-one');

/** Per unit: the steady rates (msgs/s published, so falling due), for how long, and the delay range. */
interface Plan {
  readonly rates: readonly number[];
  readonly seconds: number;
  /** In units: each message's delay is uniform in [min, max) units (1 s: 8–16 s, i.e. 1 to 4 delay levels). */
  readonly minUnits: number;
  readonly maxUnits: number;
}
const PLANS: Record<'quick' | 'full', Record<string, Plan>> = {
  quick: { '1s': { rates: [500], seconds: 12, minUnits: 4, maxUnits: 8 } },
  full: {
    '1s': { rates: [500, 1000, 2000], seconds: 30, minUnits: 8, maxUnits: 16 },
    '1m': { rates: [100], seconds: 90, minUnits: 1, maxUnits: 2 },
  },
};
/** For a unit without a plan of its own. */
const FALLBACK: Plan = { rates: [500], seconds: 30, minUnits: 2, maxUnits: 6 };
const CONCURRENCY = 100;
/** Issue 5: p99 lateness ≤ 1.5 × unit at a load the broker sustains. */
export const TARGET_UNITS = 1.5;
/**
 * Issue 13: every run within its bound, beside the broker's own delay (expiring, routing,
 * delivery), which the bound leaves out: allowed here as half a unit, the share of the p99
 * target above the one unit of rounding.
 */
export const BROKER_DELAY_UNITS = 0.5;

interface Row extends LatenessResult {
  readonly queueType: string;
  readonly unit: string;
  readonly rate: number;
  readonly seconds: number;
  readonly delays: string;
}

/**
 * Lateness under load: messages are published at a steady rate with random delays, so they
 * stream through the delay levels and fall due continuously, as under a real recurring
 * workload; a daemon with work-ahead off consumes them, and the daemon's own lateness figure
 * (handler start − due) gives p50/p99/max. Delays are rounded up to the unit, so lateness up to
 * one unit is by design; the target leaves half a unit for the broker and the daemon.
 */
export const latenessBenchmark: Benchmark = {
  name: 'lateness',
  description: 'messages falling due at a steady rate through the delay levels: p50/p99/max lateness (start − due)',
  async run(options: BenchOptions): Promise<BenchReport> {
    const plans = options.quick ? PLANS.quick : PLANS.full;
    const units = options.units ?? Object.keys(plans);
    const loadStart = loadAverage();
    const rows: Row[] = [];
    const failures: Array<{ queueType: string; unit: string; rate: number; error: string }> = [];
    for (const unit of units) {
      const plan = plans[unit] ?? PLANS.full[unit] ?? FALLBACK;
      for (const queueType of options.queueTypes) {
        for (const rate of plan.rates) {
          const seconds = options.n ? Math.max(1, Math.round(options.n / rate)) : plan.seconds;
          const label = `lateness ${queueType} unit ${unit} ${rate}/s × ${seconds} s`;
          const unitMs = parseDuration(unit, 'unit');
          const job: LatenessJob = {
            label,
            queueType,
            unit,
            rate,
            seconds,
            minDelayMs: plan.minUnits * unitMs,
            maxDelayMs: plan.maxUnits * unitMs,
            concurrency: CONCURRENCY,
            amqpUrl: options.amqpUrl,
          };
          options.progress(`${label}: running`);
          const delays = `${plan.minUnits}–${plan.maxUnits} × ${unit}, ${levelsFor(unitMs)} levels`;
          try {
            const r = options.inProcess ? await runLateness(job, (l) => options.progress(`${label}: ${l}`)) : await runInChild<LatenessJob, LatenessResult>(RUN_ONE_SCRIPT, job);
            rows.push({ ...r, queueType, unit, rate, seconds, delays });
            options.progress(`${label}: p50 ${formatInt(r.p50Ms)} ms, p99 ${formatInt(r.p99Ms)} ms, max ${formatInt(r.maxMs)} ms (${r.handled}/${r.n} handled)`);
          } catch (err) {
            // One failed run does not lose the others' figures.
            const error = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
            options.progress(`${label}: FAILED: ${error}`);
            failures.push({ queueType, unit, rate, error });
          }
        }
      }
    }
    const loadEnd = loadAverage();
    const targets: TargetResult[] = failures.map((f) => ({
      what: `lateness (${f.queueType}, unit ${f.unit}, ${f.rate}/s) p99 ≤`,
      target: `${TARGET_UNITS} × unit`,
      measured: `run failed: ${f.error}`,
      met: false,
    }));
    targets.push(...rows.map((r) => {
      const unitMs = parseDuration(r.unit, 'unit');
      const complete = r.handled >= r.n;
      return {
        what: `lateness (${r.queueType}, unit ${r.unit}, ${r.rate}/s) p99 ≤`,
        target: `${TARGET_UNITS} × unit = ${formatInt(TARGET_UNITS * unitMs)} ms`,
        measured: `${formatInt(r.p99Ms)} ms = ${formatFixed(r.p99Ms / unitMs, 2)} × unit${complete ? '' : `, only ${r.handled} of ${r.n} handled in time`}`,
        met: complete && r.p99Ms <= TARGET_UNITS * unitMs,
      };
    }));
    targets.push(...rows.map((r) => {
      const unitMs = parseDuration(r.unit, 'unit');
      return {
        what: `lateness (${r.queueType}, unit ${r.unit}, ${r.rate}/s) past each run's bound by at most`,
        target: `the broker's own delay, ${BROKER_DELAY_UNITS} × unit = ${formatInt(BROKER_DELAY_UNITS * unitMs)} ms`,
        measured: `${formatInt(Math.max(0, r.worstOverBoundMs))} ms (${formatInt(r.pastBound)} of ${formatInt(r.judged)} runs judged past the bound)`,
        met: r.handled >= r.n && r.judged === r.handled - r.early && r.worstOverBoundMs <= BROKER_DELAY_UNITS * unitMs,
      };
    }));
    const text = [
      `lateness — ${this.description}`,
      `orbit seed publishes msgs/s (paced) for the given seconds, each with a random delay in the given range, while a daemon (lane concurrency ${CONCURRENCY}, handler returns at once, work-ahead off) consumes; each run in a fresh node process and namespace`,
      'lateness = handler start − due (the daemon\'s handlerStarted figure). Delays round up to the unit, so up to one unit of lateness is by design; a rising p50 by tenth means the load is not sustained.',
      'past bound: runs that started later than the bound their publisher wrote on them (due + tolerance × delay + unit, + linger), which leaves out the broker\'s own delay; worst over bound: the most any run passed it.',
      describeLoad(loadStart, loadEnd),
      '',
      renderTable(
        [
          { header: 'queueType' },
          { header: 'unit' },
          { header: 'msgs/s due', align: 'right' },
          { header: 'for s', align: 'right' },
          { header: 'delays' },
          { header: 'handled', align: 'right' },
          { header: 'p50 ms', align: 'right' },
          { header: 'p90 ms', align: 'right' },
          { header: 'p99 ms', align: 'right' },
          { header: 'max ms', align: 'right' },
          { header: 'p99 / unit', align: 'right' },
          { header: 'past bound', align: 'right' },
          { header: 'worst over bound ms', align: 'right' },
          { header: 'p50 by tenth of the run, ms' },
        ],
        rows.map((r) => [
          r.queueType,
          r.unit,
          formatInt(r.rate),
          String(r.seconds),
          r.delays,
          `${formatInt(r.handled)}/${formatInt(r.n)}`,
          formatInt(r.p50Ms),
          formatInt(r.p90Ms),
          formatInt(r.p99Ms),
          formatInt(r.maxMs),
          formatFixed(r.p99Ms / parseDuration(r.unit, 'unit'), 2),
          formatInt(r.pastBound),
          formatInt(Math.max(0, r.worstOverBoundMs)),
          r.p50ByTenthMs.map((v) => formatInt(v)).join(' '),
        ]),
      ),
      ...failures.map((f) => `FAILED: ${f.queueType}, unit ${f.unit}, ${f.rate}/s: ${f.error}`),
      '',
      ...targets.map(targetLine),
    ];
    return {
      benchmark: this.name,
      text,
      data: { benchmark: this.name, params: { concurrency: CONCURRENCY, units, quick: options.quick }, load: { start: loadStart, end: loadEnd }, rows: rows.map((r) => ({ ...r, meanMs: round(r.meanMs, 1) })), failures, targets },
    };
  },
};
