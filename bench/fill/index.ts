import type { QueueType } from '../../src/config/types';
import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { randomNamespace } from '../lib/broker';
import { assertBrokerHoldsLadders, type LadderRun } from '../lib/broker-handles';
import { runFloor, withNamespaceCleanup, type FloorJob, type FloorResult } from '../lib/floor';
import { runInChild } from '../lib/isolate';
import { describeLoad, loadAverage } from '../lib/load';
import { alternatingOrder, median, nowSeconds, round } from '../lib/stats';
import { formatFixed, formatInt, renderTable } from '../lib/table';
import { fillConfig, runFill, type FillJob, type FillResult } from './fill';

const RUN_ONE_SCRIPT = require.resolve('./run-one');

/** Sizes per mode. Quick: ≈ 30 s per queue type here; full: ≈ 2 min per queue type. */
export const PLAN = {
  quick: { rounds: 1, n: 20_000, floorN: 20_000, floorWarmupMs: 3_000, floorWindowMs: 6_000 },
  full: { rounds: 2, n: 100_000, floorN: 40_000, floorWarmupMs: 4_000, floorWindowMs: 15_000 },
} as const;

export const BODY_BYTES = 80;
export const BUNDLE_MAX = 100;
export const LINGER_MS = 100;
/** orbit seed's default window for a lane of bundle.max 100: 50 bundles. */
export const WINDOW = 50 * BUNDLE_MAX;
export const MIN_DELAY_MS = 60_000;
export const MAX_DELAY_MS = 86_400_000;
const DEFAULT_PREFETCH = 100;
/** The tolerance issue's targets (2 cores). */
export const TARGET_LOGICAL_PER_AMQP = 50;
export const TARGET_RATE = 5_000;

interface Entry {
  readonly name: string;
  readonly queueType?: QueueType;
  readonly tolerance?: string;
}

interface Row {
  readonly round: number;
  readonly entry: Entry;
  readonly floor?: FloorResult;
  readonly fill?: FillResult;
  readonly error?: string;
}

/** AMQP messages behind a fill: the broker's count when read, else what was published. */
function amqpOf(f: FillResult): number {
  return f.brokerMessages ?? f.amqpPublished;
}

/** An entry's run as the handle check sees it; none when its config is invalid (the run itself reports that). */
function ladderRun(entry: Entry, options: BenchOptions): LadderRun[] {
  try {
    const job = { namespace: 'bench-handle-check', amqpUrl: options.amqpUrl, queueType: entry.queueType!, bundleMax: BUNDLE_MAX, lingerMs: LINGER_MS, extra: options.orbitSettings, tolerance: entry.tolerance! };
    return [{ name: entry.name, config: fillConfig(job).config, spanMs: [MIN_DELAY_MS, MAX_DELAY_MS] }];
  } catch {
    return [];
  }
}

/**
 * Fill (DESIGN.md, "Precision"): how many logical messages share an AMQP message when each
 * has its own delay between 1 min and 1 day, and how fast they go in, against the broker's
 * floor measured in the same run.
 */
export const fillBenchmark: Benchmark = {
  name: 'fill',
  description: 'N messages published once into a bundled lane (max 100), delays uniform over 1 min – 1 day: logical per AMQP message and logical msgs/s vs the floor',
  async run(options: BenchOptions): Promise<BenchReport> {
    const plan = options.quick ? PLAN.quick : PLAN.full;
    const rounds = options.rounds ?? plan.rounds;
    const n = options.n ?? plan.n;
    const window = options.window ?? WINDOW;
    const prefetch = options.concurrency ?? DEFAULT_PREFETCH;
    const entries: Entry[] = [{ name: 'floor' }];
    for (const queueType of options.queueTypes) for (const tolerance of options.tolerances) entries.push({ name: `fill ${queueType} tol ${tolerance}`, queueType, tolerance });
    // Before anything is declared: a broker out of file handles wedges (bench/lib/broker-handles.ts).
    await assertBrokerHoldsLadders(options.amqpUrl, entries.flatMap((e) => (e.queueType ? ladderRun(e, options) : [])), options.handleCheck);
    const loadStart = loadAverage();
    const rows: Row[] = [];
    for (const [r, list] of alternatingOrder(entries, rounds).entries()) {
      for (const entry of list) {
        const label = `fill round ${r + 1}/${rounds} ${entry.name}`;
        const t0 = nowSeconds();
        try {
          if (!entry.queueType) {
            const job: FloorJob = { kind: 'floor', label, namespace: randomNamespace('bench-floor'), amqpUrl: options.amqpUrl, n: plan.floorN, prefetch, bodyBytes: BODY_BYTES, warmupMs: plan.floorWarmupMs, windowMs: plan.floorWindowMs };
            const floor = await runFloor(job, options.inProcess, options.progress);
            rows.push({ round: r + 1, entry, floor });
            options.progress(`${label}: ${formatInt(floor.msgsPerSec)} msgs/s (${(nowSeconds() - t0).toFixed(0)} s)`);
          } else {
            const job: FillJob = {
              kind: 'fill',
              label,
              namespace: randomNamespace('bench-fill'),
              queueType: entry.queueType,
              tolerance: entry.tolerance!,
              extra: options.orbitSettings,
              amqpUrl: options.amqpUrl,
              n,
              window,
              bundleMax: BUNDLE_MAX,
              lingerMs: LINGER_MS,
              bodyBytes: BODY_BYTES,
              minDelayMs: MIN_DELAY_MS,
              maxDelayMs: MAX_DELAY_MS,
            };
            const say = (line: string) => options.progress(`${label}: ${line}`);
            const fill = await withNamespaceCleanup(options.amqpUrl, job.namespace, () =>
              options.inProcess ? runFill(job, say) : runInChild<FillJob, FillResult>(RUN_ONE_SCRIPT, { ...job, parentCleansUp: true }),
            );
            rows.push({ round: r + 1, entry, fill });
            options.progress(
              `${label}: ${formatInt(fill.logicalPerSec)} logical msgs/s, ${formatInt(fill.amqpPublished)} AMQP published, broker holds ${fill.brokerMessages === undefined ? '?' : formatInt(fill.brokerMessages)} (${(nowSeconds() - t0).toFixed(0)} s)`,
            );
          }
        } catch (err) {
          const message = firstLine(err);
          rows.push({ round: r + 1, entry, error: message });
          options.progress(`${label} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : message}`);
        }
      }
    }
    const loadEnd = loadAverage();

    const floorRates = rows.filter((x) => x.floor).map((x) => x.floor!.msgsPerSec);
    const floorRate = floorRates.length > 0 ? median(floorRates) : undefined;
    const floorOfRound = (r: number) => rows.find((x) => x.round === r && x.floor)?.floor?.msgsPerSec;
    const summary = entries
      .filter((e) => e.queueType)
      .map((e) => {
        const ok = rows.filter((x) => x.entry === e && x.fill).map((x) => x.fill!);
        const error = rows.find((x) => x.entry === e && x.error !== undefined)?.error;
        if (ok.length === 0) return { entry: e, error: error ?? 'not run' };
        const logicalPerSec = n / median(ok.map((f) => f.seconds));
        const amqp = median(ok.map(amqpOf));
        return {
          entry: e,
          logicalPerSec,
          ratio: floorRate === undefined ? undefined : logicalPerSec / floorRate,
          amqpMessages: amqp,
          amqpPublished: median(ok.map((f) => f.amqpPublished)),
          brokerMessages: ok.every((f) => f.brokerMessages !== undefined) ? median(ok.map((f) => f.brokerMessages!)) : undefined,
          logicalPerAmqp: n / amqp,
          queuesUsed: ok[0]!.brokerQueuesUsed,
          cpuMicrosPerMsg: median(ok.map((f) => f.cpuMicrosPerMsg)),
          toleranceKey: ok[0]!.toleranceKey,
          error: undefined as string | undefined,
        };
      });

    const targets: TargetResult[] = [];
    for (const s of summary) {
      const tag = `fill (${s.entry.queueType}, tolerance ${s.entry.tolerance})`;
      if (s.error !== undefined) {
        targets.push({ what: tag, target: 'completes', measured: `failed: ${s.error}`, met: false });
        continue;
      }
      targets.push({ what: `${tag} logical messages per AMQP message ≥`, target: String(TARGET_LOGICAL_PER_AMQP), measured: `${formatFixed(s.logicalPerAmqp!, 2)} (${formatInt(n)} in ${formatInt(s.amqpMessages!)})`, met: s.logicalPerAmqp! >= TARGET_LOGICAL_PER_AMQP });
      targets.push({
        what: `${tag} logical msgs/s (confirmed) ≥`,
        target: formatInt(TARGET_RATE),
        measured: `${formatInt(s.logicalPerSec!)}/s${s.ratio === undefined ? '' : `, ${formatFixed(s.ratio, 2)} × floor`}`,
        met: s.logicalPerSec! >= TARGET_RATE,
      });
    }

    const dash = '—';
    const text = [
      `fill — ${this.description}`,
      `N = ${formatInt(n)} logical messages of ${BODY_BYTES} bytes through Scheduler.publish (${formatInt(window)} awaiting their confirm at once, a bulk load as orbit seed makes it: when they are all out, the oldest open bundles go, down to half), lane bundle { max: ${BUNDLE_MAX}, linger: ${LINGER_MS}ms }, delay.unit orbit's default, delay of message i uniform over [1 min, 1 day) by a hash of i; nothing consumes; timed from the first publish to the last confirm`,
      `AMQP messages: what the broker holds in the namespace's queues afterwards (rabbitmqctl list_queues, queues declared on demand included); "published": basic.publish frames the process sent (counting wrapper)`,
      `floor: raw amqplib on one plain classic queue, prefetch ${prefetch}, ${formatInt(plan.floorN)} resident messages, consume → sendToQueue (confirm) → ack; ${plan.floorWarmupMs / 1000} s warm-up, ${plan.floorWindowMs / 1000} s counted`,
      `delay.queueType ${options.queueTypes.join(', ')}; delay.tolerance ${options.tolerances.join(', ')}${Object.keys(options.orbitSettings).length > 0 ? `; --orbit-set ${Object.entries(options.orbitSettings).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}; ${rounds} round(s), alternating; ${options.inProcess ? 'all in this process' : 'each run in a fresh node process and namespace'}`,
      describeLoad(loadStart, loadEnd),
      '',
      renderTable(
        [
          { header: 'round', align: 'right' },
          { header: 'run' },
          { header: 'seconds', align: 'right' },
          { header: 'logical msgs/s', align: 'right' },
          { header: '× floor (round)', align: 'right' },
          { header: 'AMQP published', align: 'right' },
          { header: 'broker holds', align: 'right' },
          { header: 'logical/AMQP', align: 'right' },
          { header: 'queues used', align: 'right' },
          { header: 'CPU µs/msg', align: 'right' },
        ],
        rows.map((x) => {
          if (x.error !== undefined) return [String(x.round), x.entry.name, 'FAILED (below)'];
          if (x.floor) {
            const f = x.floor;
            return [String(x.round), 'floor', formatFixed(f.windowSeconds, 1), formatInt(f.msgsPerSec), '1.00', dash, dash, dash, '1', formatFixed(f.cpuMicrosPerMsg, 0)];
          }
          const f = x.fill!;
          const fr = floorOfRound(x.round);
          return [
            String(x.round),
            x.entry.name + (f.toleranceKey === 'absent' ? ' (no key)' : ''),
            formatFixed(f.seconds, 2),
            formatInt(f.logicalPerSec),
            fr === undefined ? dash : formatFixed(f.logicalPerSec / fr, 2),
            formatInt(f.amqpPublished),
            f.brokerMessages === undefined ? dash : formatInt(f.brokerMessages),
            formatFixed(n / amqpOf(f), 2),
            f.brokerQueuesUsed === undefined ? dash : `${f.brokerQueuesUsed} of ${f.brokerQueues}`,
            formatFixed(f.cpuMicrosPerMsg, 1),
          ];
        }),
      ),
      '',
      `median over ${rounds} round(s); floor ${floorRate === undefined ? 'not measured' : `${formatInt(floorRate)} msgs/s`}:`,
      renderTable(
        [
          { header: 'queueType' },
          { header: 'tolerance' },
          { header: 'logical msgs/s', align: 'right' },
          { header: '× floor', align: 'right' },
          { header: 'AMQP messages', align: 'right' },
          { header: 'logical/AMQP', align: 'right' },
          { header: 'CPU µs/msg', align: 'right' },
        ],
        summary.map((s) => {
          const head = [s.entry.queueType!, s.entry.tolerance! + (s.toleranceKey === 'absent' ? ' (no key)' : '')];
          if (s.error !== undefined) return [...head, 'FAILED (below)'];
          return [...head, formatInt(s.logicalPerSec!), s.ratio === undefined ? dash : formatFixed(s.ratio, 2), formatInt(s.amqpMessages!), formatFixed(s.logicalPerAmqp!, 2), formatFixed(s.cpuMicrosPerMsg!, 1)];
        }),
      ),
      ...(summary.some((s) => s.toleranceKey === 'absent') ? ['(no key): this orbit has no delay.tolerance setting; tolerance 0 ran without it (exact delays, as before the setting)'] : []),
      '',
      ...failures(rows),
      ...targets.map(targetLine),
    ];
    return {
      benchmark: this.name,
      text,
      data: {
        benchmark: this.name,
        params: { n, rounds, window, bundleMax: BUNDLE_MAX, lingerMs: LINGER_MS, bodyBytes: BODY_BYTES, minDelayMs: MIN_DELAY_MS, maxDelayMs: MAX_DELAY_MS, queueTypes: options.queueTypes, tolerances: options.tolerances, orbitSettings: options.orbitSettings, floorPlan: plan, prefetch },
        load: { start: loadStart, end: loadEnd },
        floor: floorRate === undefined ? undefined : round(floorRate, 1),
        rounds: rows.map((x) => ({ round: x.round, run: x.entry.name, queueType: x.entry.queueType, tolerance: x.entry.tolerance, floor: x.floor, fill: x.fill, error: x.error })),
        summary: summary.map((s) => ({ ...s, entry: undefined, run: s.entry.name, queueType: s.entry.queueType, tolerance: s.entry.tolerance })),
        targets,
      },
    };
  },
};

/** The first line of an error, without the `Error: ` a child's stack starts with. */
function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? '').replace(/^(\w*Error): /, '');
}

/** One line per failed run, under the tables. */
function failures(rows: readonly Row[]): string[] {
  const failed = rows.filter((x) => x.error !== undefined);
  return failed.length === 0 ? [] : [...failed.map((x) => `FAILED: round ${x.round} ${x.entry.name}: ${x.error}`), ''];
}
