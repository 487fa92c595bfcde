import type { QueueType } from '../../src/config/types';
import { parseDuration } from '../../src/config/durations';
import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { randomNamespace } from '../lib/broker';
import { assertBrokerHoldsLadders, type LadderRun } from '../lib/broker-handles';
import { FLOOR_PLAN, HOLD_BASELINE, LADDER_BASELINE, runFloor, withNamespaceCleanup, type FloorJob, type FloorResult } from '../lib/floor';
import { runInChild } from '../lib/isolate';
import { describeLoad, loadAverage } from '../lib/load';
import { alternatingOrder, median, nowSeconds, round } from '../lib/stats';
import { formatFixed, formatInt, renderTable } from '../lib/table';
import { runSteady, steadyConfig, type SteadyJob, type SteadyResult } from './loop';
import { demandPerSecond, WORKLOADS, type SteadyKind } from './workload';

const RUN_ONE_SCRIPT = require.resolve('./run-one');

/**
 * Sizes and times per mode (the floor's: FLOOR_PLAN). Quick: ≈ 45 s per queue type here; full:
 * ≈ 5 min per queue type. Full mode's bundled N: since session 26 the bundled loop runs ~100,000
 * runs/s on 2 cores, more than 100,000 ids over 0.1–100 s ask for (~114,000/s with the linger
 * and tolerance added to each interval, the lane empties): 300,000 keep it backlogged, and
 * reach equilibrium in 75–85 s.
 */
export const PLAN = {
  quick: { rounds: 1, closingFloor: false, n: { unbundled: 15_000, bundled: 25_000 }, warmupMs: 3_000, maxWarmupMs: 8_000, windowMs: 5_000 },
  full: { rounds: 1, closingFloor: true, n: { unbundled: 60_000, bundled: 300_000 }, warmupMs: 8_000, maxWarmupMs: 120_000, windowMs: 15_000 },
} as const;

export const BODY_BYTES = 80;
const DEFAULT_CONCURRENCY = 100;
/** The tolerance issue's targets (2 cores), in logical handler runs per second over the floor's msgs/s. */
export const TARGETS: Readonly<Record<SteadyKind, number>> = { unbundled: 0.75, bundled: 10 };
const VARIANTS: readonly SteadyKind[] = ['unbundled', 'bundled'];
/**
 * The raw ladder's resident messages, at least: ~2 × what its loop keeps in its rungs at
 * ~5,000 runs/s over intervals of 4.5 s on average, so its queue never empties (it must be
 * capacity-bound to be a ceiling; `depthAtEnd` shows it).
 */
const RAW_LADDER_MIN_N = 40_000;
/**
 * The raw hold's resident messages, at least: its loop runs ~2 × the raw ladder's, and at
 * 40,000 its queue emptied (the ids asked for 13,600 runs/s). Its rung consumers' prefetch:
 * 200 each, 1,600 held over 8 rungs (session 30's prototype).
 */
const RAW_HOLD_MIN_N = 100_000;
const RAW_HOLD_PREFETCH = 200;
/** Its warm-up, at least: after 3 s a third of its runs still came through the queue, after 8 s a sixth. */
const RAW_HOLD_MIN_WARMUP_MS = 8_000;

interface Entry {
  readonly name: string;
  /** The raw ladder baseline (`LADDER_BASELINE`), not the floor. */
  readonly ladder?: boolean;
  /** With `ladder`: the raw hold (`HOLD_BASELINE`) instead. */
  readonly hold?: boolean;
  readonly variant?: SteadyKind;
  readonly queueType?: QueueType;
  readonly tolerance?: string;
  /** Outstanding cancels the run starts with (`--tombstones`). */
  readonly tombstones?: number;
}

interface Row {
  readonly round: number;
  readonly entry: Entry;
  readonly floor?: FloorResult;
  readonly steady?: SteadyResult;
  readonly error?: string;
}

/** A bundled lane's concurrency: 2 × max, so two deliveries' messages run at once (as bench/bundles). */
function concurrencyFor(variant: SteadyKind, base: number): number {
  const max = WORKLOADS[variant].bundleMax;
  return max > 1 ? Math.max(base, 2 * max) : base;
}

/** An entry's run as the handle check sees it; none when its config is invalid (the run itself reports that). */
function ladderRun(entry: Entry, options: BenchOptions, base: number): LadderRun[] {
  const variant = entry.variant!;
  try {
    const job = { namespace: 'bench-handle-check', amqpUrl: options.amqpUrl, variant, queueType: entry.queueType!, concurrency: concurrencyFor(variant, base), extra: options.orbitSettings, tolerance: entry.tolerance! };
    return [{ name: entry.name, config: steadyConfig(job).config, spanMs: WORKLOADS[variant].spanMs }];
  } catch {
    return [];
  }
}

/**
 * The steady state (DESIGN.md, "Precision"): ids coming back for ever through orbit's delay
 * path, in logical handler runs per second, against the broker's floor measured in the same run.
 */
export const steadyBenchmark: Benchmark = {
  name: 'steady',
  description: "orbit's forever loop (each id rescheduled by its own interval, for ever) in logical runs/s, against the broker's floor in the same run",
  async run(options: BenchOptions): Promise<BenchReport> {
    const plan = options.quick ? PLAN.quick : PLAN.full;
    const floorPlan = options.quick ? FLOOR_PLAN.quick : FLOOR_PLAN.full;
    const maxWarmupMs = Math.max(plan.warmupMs, options.maxWarmupMs ?? plan.maxWarmupMs);
    const rounds = options.rounds ?? plan.rounds;
    const base = options.concurrency ?? DEFAULT_CONCURRENCY;
    const variants = pickVariants(options.contenders);
    const nOf = (v: SteadyKind) => options.n ?? plan.n[v];
    const entries: Entry[] = [{ name: 'floor' }];
    // The design's ceiling beside the floor: the raw ladder, where the unbundled loop runs on one.
    const ladderN = Math.max(RAW_LADDER_MIN_N, nOf('unbundled'));
    const holdN = Math.max(RAW_HOLD_MIN_N, nOf('unbundled'));
    if (variants.includes('unbundled') && options.tolerances.some((t) => !/^0+(\.0*)?%?$/.test(t.trim()))) entries.push({ name: LADDER_BASELINE, ladder: true }, { name: HOLD_BASELINE, ladder: true, hold: true });
    const tombstoneCounts = options.tombstones.length > 0 ? options.tombstones : [0];
    for (const queueType of options.queueTypes)
      for (const tolerance of options.tolerances)
        for (const tombstones of tombstoneCounts)
          for (const variant of variants) {
            const suffix = tombstoneCounts.some((t) => t > 0) ? ` tombstones ${tombstones}` : '';
            entries.push({ name: `${variant} ${queueType} tol ${tolerance}${suffix}`, variant, queueType, tolerance, tombstones });
          }
    // Before anything is declared: a broker out of file handles wedges (bench/lib/broker-handles.ts).
    await assertBrokerHoldsLadders(options.amqpUrl, entries.flatMap((e) => (e.variant ? ladderRun(e, options, base) : [])), options.handleCheck);
    const order = alternatingOrder(entries, rounds);
    // The floor again at the very end when the last round does not end with it: a machine that
    // got busier or quieter during the run shows as two different floors (their median is used).
    if (plan.closingFloor && order[order.length - 1]![order[order.length - 1]!.length - 1] !== entries[0]) order[order.length - 1]!.push(entries[0]!);
    const loadStart = loadAverage();
    const rows: Row[] = [];
    for (const [r, list] of order.entries()) {
      for (const entry of list) {
        const label = `steady round ${r + 1}/${rounds} ${entry.name}`;
        const t0 = nowSeconds();
        try {
          if (!entry.variant) {
            const job: FloorJob = {
              kind: 'floor',
              label,
              namespace: randomNamespace(entry.hold ? 'bench-hold' : entry.ladder ? 'bench-ladder' : 'bench-floor'),
              amqpUrl: options.amqpUrl,
              n: entry.hold ? holdN : entry.ladder ? ladderN : floorPlan.n,
              prefetch: base,
              bodyBytes: BODY_BYTES,
              // The raw hold starts with its whole N in the queue; its rungs take over from the first pass on.
              warmupMs: entry.hold ? Math.max(RAW_HOLD_MIN_WARMUP_MS, plan.warmupMs) : entry.ladder ? plan.warmupMs : floorPlan.warmupMs,
              windowMs: floorPlan.windowMs,
              ...(entry.ladder ? { ladder: { rungsSeconds: 8, ...(entry.hold ? { holdPrefetch: RAW_HOLD_PREFETCH } : {}) } } : {}),
            };
            const floor = await runFloor(job, options.inProcess, options.progress);
            rows.push({ round: r + 1, entry, floor });
            options.progress(`${label}: ${formatInt(floor.msgsPerSec)} msgs/s, ${formatInt(floor.depthAtEnd)} left in the queue (${(nowSeconds() - t0).toFixed(0)} s)`);
          } else {
            const job: SteadyJob = {
              kind: 'steady',
              label,
              namespace: randomNamespace(`bench-steady-${entry.variant === 'bundled' ? 'b' : 'u'}`),
              variant: entry.variant,
              queueType: entry.queueType!,
              tolerance: entry.tolerance!,
              tombstones: entry.tombstones ?? 0,
              extra: options.orbitSettings,
              amqpUrl: options.amqpUrl,
              n: nOf(entry.variant),
              concurrency: concurrencyFor(entry.variant, base),
              bodyBytes: BODY_BYTES,
              warmupMs: plan.warmupMs,
              maxWarmupMs,
              windowMs: plan.windowMs,
            };
            const say = (line: string) => options.progress(`${label}: ${line}`);
            const steady = await withNamespaceCleanup(options.amqpUrl, job.namespace, () =>
              options.inProcess ? runSteady(job, say) : runInChild<SteadyJob, SteadyResult>(RUN_ONE_SCRIPT, { ...job, parentCleansUp: true }),
            );
            rows.push({ round: r + 1, entry, steady });
            options.progress(
              `${label}: ${formatInt(steady.runsPerSec)} runs/s, ${formatInt(steady.deliveriesPerSec)} deliveries/s, ${formatFixed(steady.delayHopsPerDelivery, 2)} delay hops/delivery, lane depth ${steady.laneDepthMin}–${steady.laneDepthMax} (${(nowSeconds() - t0).toFixed(0)} s)`,
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

    const unitSetting = options.orbitSettings['delay.unit'];
    const unitOverride = unitSetting === undefined ? undefined : parseDuration(unitSetting, 'delay.unit');
    const floorRates = rows.filter((x) => x.floor && !x.entry.ladder).map((x) => x.floor!.msgsPerSec);
    const floorRate = floorRates.length > 0 ? median(floorRates) : undefined;
    const floorOfRound = (r: number) => {
      const mine = rows.filter((x) => x.round === r && x.floor && !x.entry.ladder).map((x) => x.floor!.msgsPerSec);
      return mine.length > 0 ? median(mine) : undefined;
    };
    const baselineRate = (hold: boolean) => {
      const rates = rows.filter((x) => x.floor && x.entry.ladder && !x.entry.hold === !hold).map((x) => x.floor!.msgsPerSec);
      return rates.length > 0 ? median(rates) : undefined;
    };
    const ladderRate = baselineRate(false);
    const holdRate = baselineRate(true);
    const summary = entries
      .filter((e) => e.variant)
      .map((e) => {
        const nonZero = e.tolerance !== undefined && !/^0+(\.0*)?%?$/.test(e.tolerance.trim());
        const mine = rows.filter((x) => x.entry === e);
        const ok = mine.filter((x) => x.steady).map((x) => x.steady!);
        const errors = mine.filter((x) => x.error).map((x) => x.error!);
        const n = nOf(e.variant!);
        const demand = demandPerSecond(e.variant!, n, unitOverride ?? WORKLOADS[e.variant!].unitMs);
        if (ok.length === 0) return { entry: e, n, demand, error: errors[0] ?? 'not run' };
        const med = (f: (s: SteadyResult) => number) => median(ok.map(f));
        const runsPerSec = med((s) => s.runsPerSec);
        const deliveriesPerSec = med((s) => s.deliveriesPerSec);
        const publishesPerSec = med((s) => s.publishesPerSec);
        return {
          entry: e,
          n,
          demand,
          runsPerSec,
          ratio: floorRate === undefined ? undefined : runsPerSec / floorRate,
          ladderRatio: ladderRate === undefined || e.variant !== 'unbundled' || !nonZero ? undefined : runsPerSec / ladderRate,
          deliveriesPerSec,
          publishesPerSec,
          logicalPerDelivery: med((s) => s.logicalPerDelivery),
          logicalPerPublish: med((s) => s.logicalPerPublish),
          delayHopsPerDelivery: med((s) => s.delayHopsPerDelivery),
          queuePassesPerSec: med((s) => s.queuePassesPerSec),
          passesRatio: floorRate === undefined ? undefined : med((s) => s.queuePassesPerSec) / floorRate,
          cpuMicrosPerRun: med((s) => s.cpuMicrosPerRun),
          // Broker disk writes per logical run, bytes (undefined when the broker is not on this host).
          writtenPerRun: ok.every((s) => s.brokerWritesPerSec !== undefined) ? median(ok.map((s) => s.brokerWritesPerSec! / s.runsPerSec)) : undefined,
          writtenPerSec: ok.every((s) => s.brokerWritesPerSec !== undefined) ? median(ok.map((s) => s.brokerWritesPerSec!)) : undefined,
          saturated: ok.every((s) => s.laneDepthMin > 0),
          equilibrium: ok.every((s) => s.equilibrium),
          warmupSeconds: med((s) => s.warmupSeconds),
          turnover: med((s) => s.turnover),
          toleranceKey: ok[0]!.toleranceKey,
          failedRounds: errors.length,
          error: undefined as string | undefined,
        };
      });

    const targets: TargetResult[] = summary.map((s) => {
      const what = `steady ${s.entry.variant} (${s.entry.queueType}, tolerance ${s.entry.tolerance}) logical runs/s ≥`;
      const target = `${TARGETS[s.entry.variant!]} × floor`;
      if (s.error !== undefined) return { what, target, measured: `failed: ${s.error}`, met: false };
      if (s.ratio === undefined) return { what, target, measured: 'floor not measured', met: undefined };
      const note = [
        s.saturated ? '' : '; the lane emptied at times: demand-bound, raise --n',
        s.equilibrium ? '' : `; NOT in equilibrium after ${formatFixed(s.warmupSeconds!, 0)} s of warm-up (bundles in/out ${formatFixed(s.logicalPerDelivery!, 1)}/${formatFixed(s.logicalPerPublish!, 1)}, lane turned over ${formatFixed(s.turnover!, 1)}×): the lane still held seeded messages`,
      ].join('');
      const hold = holdRate === undefined ? '' : `, the ${HOLD_BASELINE} ${formatFixed(holdRate / floorRate!, 2)}× floor`;
      const ceiling = s.ladderRatio === undefined ? '' : `; ${formatFixed(s.ladderRatio, 2)}× the ${LADDER_BASELINE}, itself ${formatFixed(ladderRate! / floorRate!, 2)}× floor${hold}`;
      return { what, target, measured: `${formatFixed(s.ratio, 2)}× (${formatInt(s.runsPerSec!)} vs ${formatInt(floorRate!)} msgs/s${ceiling}${note})`, met: s.ratio >= TARGETS[s.entry.variant!] };
    });

    const dash = '—';
    const text = [
      `steady — ${this.description}`,
      `floor: raw amqplib on one plain classic queue (stored as orbit stores its classic queues on this broker), prefetch ${base}, ${formatInt(floorPlan.n)} resident messages of ${BODY_BYTES} bytes, consume → sendToQueue the same body to the same queue (persistent, confirm channel of a 2nd connection) → ack on the confirm; ${floorPlan.warmupMs / 1000} s warm-up, ${floorPlan.windowMs / 1000} s counted`,
      ...(entries.some((e) => e.ladder)
        ? [
            `${LADDER_BASELINE} (the design's ceiling, without orbit's client): raw amqplib, ${formatInt(ladderN)} resident messages of ${BODY_BYTES} bytes in one plain classic queue; each delivery published through the default exchange to one of 8 fixed-TTL rung queues (1–8 s, by the hash that gives the unbundled ids their intervals) with a CC key the deliver exchange (direct) binds back to the queue, carrying orbit's five state headers; acked on the confirm; the rung dead-letters it back when its TTL expires: one hop, two queue passes per run; ${plan.warmupMs / 1000} s warm-up, ${floorPlan.windowMs / 1000} s counted`,
            `${HOLD_BASELINE} (a layout whose daemon consumes its short rungs): the ${LADDER_BASELINE} with ${formatInt(holdN)} resident messages and a consumer on each rung too (prefetch ${RAW_HOLD_PREFETCH} each), which holds each message until the due time in its headers and then runs it the same way; what the rung consumers have no room for expires into the queue as on the ladder. "delay hops" is the share of runs that came that way (two passes), the rest made one; ${Math.max(RAW_HOLD_MIN_WARMUP_MS, plan.warmupMs) / 1000} s warm-up`,
          ]
        : []),
      ...variants.map(
        (v) =>
          `${v}: N = ${formatInt(nOf(v))} ids, each seeded due within its own interval, then an in-process Daemon (lane concurrency ${concurrencyFor(v, base)}, work-ahead off) whose handler returns reschedule({ delay: interval(id) }) for ever; ${WORKLOADS[v].describe}; ${plan.warmupMs / 1000} s warm-up, ${plan.windowMs / 1000} s counted`,
      ),
      `delay.queueType ${options.queueTypes.join(', ')}; delay.tolerance ${options.tolerances.join(', ')}${Object.keys(options.orbitSettings).length > 0 ? `; --orbit-set ${Object.entries(options.orbitSettings).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}; ${rounds} round(s), alternating; ${options.inProcess ? 'all in this process' : 'each run in a fresh node process and namespace'}`,
      `warm-up: at least ${plan.warmupMs / 1000} s, then until the lane has turned over (N logical messages taken) and AMQP deliveries ≈ publishes and bundle sizes in ≈ out (within 20 %), at most ${maxWarmupMs / 1000} s; equilibrium "NO": the lane still held messages shaped by the seeding, so the rate is not yet the loop's own (when bundles in > out, as at tolerance 0, it is an upper bound); turnover: logical messages taken by the window's start ÷ N`,
      'runs/s: logical handler runs settled (replacement confirmed, then acked); deliveries: AMQP messages taken from the lane, and from the rungs where delay.hold holds them; publishes: AMQP messages the daemon published (replacements); logical in/out: logical messages per delivery / per publish (bundle sizes; equal once the lane has cycled); delay hops: TTL expiries per delivery, from the broker\'s x-death counts (0 for a held one); passes: deliveries + their delay hops, the broker\'s queue passes per second',
      "broker writes: what the node's Erlang VM caused to be written to storage over the window (write_bytes of /proc/<pid>/io, when the node is on this host), in MB/s and per 1,000 logical runs/s: the disk throughput a rescheduling rate needs",
      describeLoad(loadStart, loadEnd),
      '',
      renderTable(
        [
          { header: 'round', align: 'right' },
          { header: 'run' },
          { header: 'runs/s', align: 'right' },
          { header: '× floor (round)', align: 'right' },
          { header: 'halves', align: 'right' },
          { header: 'deliveries/s', align: 'right' },
          { header: 'publishes/s', align: 'right' },
          { header: 'logical in/out', align: 'right' },
          { header: 'delay hops', align: 'right' },
          { header: 'passes/s', align: 'right' },
          { header: 'lane depth', align: 'right' },
          { header: 'CPU µs/run', align: 'right' },
          { header: 'warm-up s', align: 'right' },
          { header: 'equilibrium (turnover)' },
          { header: 'seed s (logical/AMQP)', align: 'right' },
        ],
        rows.map((x) => {
          if (x.error !== undefined) return [String(x.round), x.entry.name, 'FAILED (below)'];
          if (x.floor) {
            const f = x.floor;
            const fr = floorOfRound(x.round);
            // Delay hops per run: the ladder's one; the hold's share of runs that expired into the queue.
            const hops = f.fromRungsShare !== undefined ? 1 - f.fromRungsShare : x.entry.ladder ? 1 : 0;
            return [String(x.round), x.entry.name, formatInt(f.msgsPerSec), fr === undefined ? dash : formatFixed(f.msgsPerSec / fr, 2), `${formatInt(f.halves[0])} / ${formatInt(f.halves[1])}`, formatInt(f.msgsPerSec), formatInt(f.msgsPerSec), '1.0 / 1.0', formatFixed(hops, hops % 1 === 0 ? 0 : 2), formatInt(f.msgsPerSec * (1 + hops)), `${formatInt(f.depthAtEnd)} (end)`, formatFixed(f.cpuMicrosPerMsg, 0), dash, dash, dash];
          }
          const s = x.steady!;
          const fr = floorOfRound(x.round);
          return [
            String(x.round),
            x.entry.name + (s.toleranceKey === 'absent' ? ' (no key)' : ''),
            formatInt(s.runsPerSec),
            fr === undefined ? dash : formatFixed(s.runsPerSec / fr, 2),
            `${formatInt(s.halves[0])} / ${formatInt(s.halves[1])}`,
            formatInt(s.deliveriesPerSec),
            formatInt(s.publishesPerSec),
            `${formatFixed(s.logicalPerDelivery, 1)} / ${formatFixed(s.logicalPerPublish, 1)}`,
            formatFixed(s.delayHopsPerDelivery, 2),
            formatInt(s.queuePassesPerSec),
            `${formatInt(s.laneDepthMin)}–${formatInt(s.laneDepthMax)}`,
            formatFixed(s.cpuMicrosPerRun, 1),
            formatFixed(s.warmupSeconds, 0),
            `${s.equilibrium ? 'yes' : 'NO'} (${formatFixed(s.turnover, 1)}×)`,
            `${formatFixed(s.seedSeconds, 1)} (${formatFixed(s.seedLogicalPerAmqp, 1)})`,
          ];
        }),
      ),
      '',
      `median over ${rounds} round(s); floor ${floorRate === undefined ? 'not measured' : `${formatInt(floorRate)} msgs/s`}${[ladderRate === undefined ? '' : `; ${LADDER_BASELINE} ${formatInt(ladderRate)} msgs/s${floorRate === undefined ? '' : ` (${formatFixed(ladderRate / floorRate, 2)} × floor)`}`, holdRate === undefined ? '' : `; ${HOLD_BASELINE} ${formatInt(holdRate)} msgs/s${floorRate === undefined ? '' : ` (${formatFixed(holdRate / floorRate, 2)} × floor)`}`].join('')}:`,
      renderTable(
        [
          { header: 'variant' },
          { header: 'queueType' },
          { header: 'tolerance' },
          { header: 'N', align: 'right' },
          { header: 'demand/s', align: 'right' },
          { header: 'runs/s', align: 'right' },
          { header: '× floor', align: 'right' },
          { header: `× ${LADDER_BASELINE}`, align: 'right' },
          { header: 'deliveries/s', align: 'right' },
          { header: 'publishes/s', align: 'right' },
          { header: 'logical in/out', align: 'right' },
          { header: 'delay hops', align: 'right' },
          { header: 'passes/s', align: 'right' },
          { header: 'passes × floor', align: 'right' },
          { header: 'CPU µs/run', align: 'right' },
          { header: 'broker writes MB/s', align: 'right' },
          { header: 'MB/s per 1k runs/s', align: 'right' },
          { header: 'lane backlog' },
          { header: 'equilibrium' },
        ],
        summary.map((s) => {
          const head = [s.entry.variant!, s.entry.queueType!, s.entry.tolerance! + (s.toleranceKey === 'absent' ? ' (no key)' : ''), formatInt(s.n), formatInt(s.demand)];
          if (s.error !== undefined) return [...head, 'FAILED (below)'];
          return [
            ...head,
            formatInt(s.runsPerSec!),
            s.ratio === undefined ? dash : formatFixed(s.ratio, 2),
            s.ladderRatio === undefined ? dash : formatFixed(s.ladderRatio, 2),
            formatInt(s.deliveriesPerSec!),
            formatInt(s.publishesPerSec!),
            `${formatFixed(s.logicalPerDelivery!, 1)} / ${formatFixed(s.logicalPerPublish!, 1)}`,
            formatFixed(s.delayHopsPerDelivery!, 2),
            formatInt(s.queuePassesPerSec!),
            s.passesRatio === undefined ? dash : formatFixed(s.passesRatio, 2),
            formatFixed(s.cpuMicrosPerRun!, 1),
            s.writtenPerSec === undefined ? dash : formatFixed(s.writtenPerSec / 1e6, 1),
            s.writtenPerRun === undefined ? dash : formatFixed(s.writtenPerRun / 1e3, 2),
            s.saturated ? 'always (capacity-bound)' : 'emptied (demand-bound?)',
            s.equilibrium ? 'yes' : 'NO',
          ];
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
        params: { plan, floorPlan, rounds, baseConcurrency: base, bodyBytes: BODY_BYTES, queueTypes: options.queueTypes, tolerances: options.tolerances, orbitSettings: options.orbitSettings, variants, n: Object.fromEntries(variants.map((v) => [v, nOf(v)])) },
        load: { start: loadStart, end: loadEnd },
        floor: floorRate === undefined ? undefined : round(floorRate, 1),
        rawLadder: ladderRate === undefined ? undefined : round(ladderRate, 1),
        rawHold: holdRate === undefined ? undefined : round(holdRate, 1),
        rounds: rows.map((x) => ({ round: x.round, run: x.entry.name, variant: x.entry.variant ?? (x.entry.hold ? 'raw-hold' : x.entry.ladder ? 'raw-ladder' : 'floor'), queueType: x.entry.queueType, tolerance: x.entry.tolerance, floor: x.floor, steady: x.steady, error: x.error })),
        summary: summary.map((s) => ({ ...s, entry: undefined, run: s.entry.name, variant: s.entry.variant, queueType: s.entry.queueType, tolerance: s.entry.tolerance })),
        targets,
      },
    };
  },
};

/**
 * `--contenders` picks variants (`unbundled`, `bundled`); the floor always runs. Names that are
 * not steady variants are other benchmarks' contenders: when none is a variant, all run.
 */
function pickVariants(names: readonly string[]): SteadyKind[] {
  const wanted = VARIANTS.filter((v) => names.includes(v));
  return wanted.length > 0 ? wanted : [...VARIANTS];
}

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
