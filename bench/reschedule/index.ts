import type { QueueType } from '../../src/config/types';
import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { runInChild } from '../lib/isolate';
import { randomNamespace } from '../lib/broker';
import { FLOOR_PLAN, runFloor, type FloorResult } from '../lib/floor';
import { describeLoad, loadAverage } from '../lib/load';
import { redisAvailable } from '../lib/redis';
import { alternatingOrder, median, round } from '../lib/stats';
import { formatFixed, formatInt, renderTable, type Column } from '../lib/table';
import { WARMUP_SHARE, type LoopTiming, type RescheduleContender } from './contender';
import { BASELINE, PEER, contenders as allContenders } from './contenders';
import { runOnce, type RunJob } from './run-one';

/** The compiled child script that runs one contender once. */
const RUN_ONE_SCRIPT = require.resolve('./run-one');

/** One hour ahead: each message passes popcount(3600) = 4 delay levels, later. */
export const RESCHEDULE_DELAY_MS = 3_600_000;
/** Issue 2's goal: orbit keeps at least this share of the raw amqplib baseline's throughput. */
export const TARGET_RATIO = 0.9;
/** Issue 5's goal: orbit at least as fast as BullMQ. */
export const TARGET_PEER_RATIO = 1.0;

/**
 * The tolerance issue's goal for the one-way loop: orbit, unbundled on the default delay path,
 * keeps at least this share of the broker's floor (`bench/lib/floor.ts`: consume → confirmed
 * `sendToQueue` to a plain queue → ack), measured in the same round.
 */
export const TARGET_FLOOR_RATIO = 0.9;

export const DEFAULTS = { quick: { n: 5_000, rounds: 1 }, full: { n: 60_000, rounds: 3 }, concurrency: 100 } as const;

/** The floor's message size (its sizes and times: FLOOR_PLAN, shared with `steady`). */
const FLOOR_BODY_BYTES = 80;

/** The floor as measured in one round of one queue-type group. */
export interface FloorRound {
  readonly queueType: QueueType;
  readonly round: number;
  readonly msgsPerSec: number;
  readonly windowSeconds: number;
  readonly cpuMicrosPerMsg: number;
}

export interface RoundResult {
  readonly queueType: QueueType;
  readonly round: number;
  readonly contender: string;
  readonly n: number;
  readonly startupSeconds: number;
  readonly seconds: number;
  readonly msgsPerSec: number;
  /** Client (this process) CPU per message during the loop, µs. */
  readonly cpuMicrosPerMsg: number;
  /** The loop's rate without its warm-up (`LoopTiming.warm`): what the ratios compare. */
  readonly warmMsgsPerSec: number;
  /** Client CPU per message without the warm-up, µs. */
  readonly warmCpuMicrosPerMsg: number;
}

export interface ContenderSummary {
  readonly queueType: QueueType;
  readonly contender: string;
  readonly n: number;
  /** Median over rounds of the loop time. */
  readonly seconds: number;
  /** N ÷ the median loop time, so the two columns always agree. */
  readonly msgsPerSec: number;
  /** Median over rounds of the warm rate (without the first `WARMUP_SHARE` of N): what the ratios compare. */
  readonly warmMsgsPerSec: number;
  /** warmMsgsPerSec ÷ the baseline's; undefined when the baseline did not run. */
  readonly ratio: number | undefined;
  /** warmMsgsPerSec ÷ BullMQ's; undefined when BullMQ did not run. */
  readonly peerRatio: number | undefined;
  /** warmMsgsPerSec ÷ the median of the group's floors (the floor, too, is counted after its warm-up). */
  readonly floorRatio: number | undefined;
  /** Median client CPU per message without the warm-up, µs: less noisy than throughput on a busy machine. */
  readonly cpuMicrosPerMsg: number;
}

/**
 * The reschedule loop: N messages wait in a lane queue (or N jobs in a BullMQ queue); each
 * contender consumes them, and for each one puts its replacement one hour ahead, waits until
 * that is safely stored, then acks the original. Timed from the first delivery to the N-th
 * settlement; preloading, connecting and cleaning up are not timed. The ratios compare warm
 * rates: each run's rate after its first `WARMUP_SHARE` of N settled, as the floor is counted
 * after its warm-up. Measured once per
 * `delay.queueType` (the replacements wait in a classic or a quorum delay level); BullMQ,
 * which has no such setting, runs in every group so each group's ratios come from the same
 * alternating rounds.
 */
export const rescheduleBenchmark: Benchmark = {
  name: 'reschedule',
  description: 'N preloaded messages, each rescheduled one hour ahead (consume → confirmed publish → ack)',
  async run(options: BenchOptions): Promise<BenchReport> {
    const mode = options.quick ? DEFAULTS.quick : DEFAULTS.full;
    const floorPlan = options.quick ? FLOOR_PLAN.quick : FLOOR_PLAN.full;
    const n = options.n ?? mode.n;
    const rounds = options.rounds ?? mode.rounds;
    const concurrency = options.concurrency ?? DEFAULTS.concurrency;
    let selected = pick(options.contenders);
    const notes: string[] = [];
    if (selected.some((c) => c.name === PEER) && !(await redisAvailable(options.redisUrl))) {
      selected = selected.filter((c) => c.name !== PEER);
      notes.push(`bullmq skipped: no Redis at ${options.redisUrl}`);
    }
    const loadStart = loadAverage();
    const results: RoundResult[] = [];
    const floors: FloorRound[] = [];
    const order = alternatingOrder(selected, rounds);
    for (const queueType of options.queueTypes) {
      const params: RunJob['params'] = { n, concurrency, delayMs: RESCHEDULE_DELAY_MS, amqpUrl: options.amqpUrl, queueType, redisUrl: options.redisUrl };
      for (const [r, contenders] of order.entries()) {
        // The broker's floor first in every round, so each round's ratios share its conditions.
        const floorLabel = `reschedule ${queueType} round ${r + 1}/${rounds} floor`;
        const floor: FloorResult = await runFloor(
          {
            kind: 'floor',
            label: floorLabel,
            namespace: randomNamespace('bench-floor'),
            amqpUrl: options.amqpUrl,
            n: floorPlan.n,
            prefetch: concurrency,
            bodyBytes: FLOOR_BODY_BYTES,
            warmupMs: floorPlan.warmupMs,
            windowMs: floorPlan.windowMs,
          },
          options.inProcess,
          options.progress,
        );
        floors.push({ queueType, round: r + 1, msgsPerSec: round(floor.msgsPerSec, 1), windowSeconds: round(floor.windowSeconds, 2), cpuMicrosPerMsg: round(floor.cpuMicrosPerMsg, 1) });
        options.progress(`${floorLabel}: ${formatInt(floor.msgsPerSec)} msgs/s`);
        for (const contender of contenders) {
          const label = `reschedule ${queueType} round ${r + 1}/${rounds} ${contender.name}`;
          const job: RunJob = { contender: contender.name, label, params };
          const timing = options.inProcess ? await runOnce(job, options.progress) : await runInChild<RunJob, LoopTiming>(RUN_ONE_SCRIPT, job);
          const result: RoundResult = {
            queueType,
            round: r + 1,
            contender: contender.name,
            n,
            startupSeconds: round(timing.startupSeconds, 4),
            seconds: round(timing.loopSeconds, 4),
            msgsPerSec: round(n / timing.loopSeconds, 1),
            cpuMicrosPerMsg: round((timing.clientCpuSeconds * 1e6) / n, 1),
            warmMsgsPerSec: round(timing.warm.settled / timing.warm.seconds, 1),
            warmCpuMicrosPerMsg: round((timing.warm.cpuSeconds * 1e6) / timing.warm.settled, 1),
          };
          results.push(result);
          options.progress(
            `${label}: ${formatFixed(result.seconds, 2)} s, ${formatInt(result.msgsPerSec)} msgs/s (warm ${formatInt(result.warmMsgsPerSec)}), client CPU ${formatFixed(result.cpuMicrosPerMsg, 0)} µs/msg (warm ${formatFixed(result.warmCpuMicrosPerMsg, 0)})`,
          );
        }
      }
    }
    const loadEnd = loadAverage();

    const summary = options.queueTypes.flatMap((qt) =>
      summarize(qt, selected, results.filter((r) => r.queueType === qt), median(floors.filter((f) => f.queueType === qt).map((f) => f.msgsPerSec))),
    );
    const targets: TargetResult[] = [];
    for (const s of summary.filter((x) => x.contender === 'orbit')) {
      targets.push({
        what: `one-way (${s.queueType}) orbit unbundled ≥`,
        target: `${TARGET_FLOOR_RATIO} × floor`,
        measured: s.floorRatio === undefined ? 'floor not run' : `${formatFixed(s.floorRatio, 2)}×`,
        met: s.floorRatio === undefined ? undefined : s.floorRatio >= TARGET_FLOOR_RATIO,
      });
      targets.push({
        what: `reschedule (${s.queueType}) orbit ≥`,
        target: `${TARGET_RATIO} × ${BASELINE}`,
        measured: s.ratio === undefined ? 'baseline not run' : `${formatFixed(s.ratio, 2)}×`,
        met: s.ratio === undefined ? undefined : s.ratio >= TARGET_RATIO,
      });
      targets.push({
        what: `reschedule (${s.queueType}) orbit ≥`,
        target: `${TARGET_PEER_RATIO} × ${PEER}`,
        measured: s.peerRatio === undefined ? 'bullmq not run' : `${formatFixed(s.peerRatio, 2)}×`,
        met: s.peerRatio === undefined ? undefined : s.peerRatio >= TARGET_PEER_RATIO,
      });
    }

    const text = [
      `reschedule — ${this.description}`,
      `N = ${n}, concurrency (prefetch) = ${concurrency}, delay = 1 h, delay.queueType ${options.queueTypes.join(' and ')}, ${rounds} round(s) each, ${options.inProcess ? 'all in this process' : 'each run in a fresh node process'}, contenders alternating (${order
        .map((o) => o.map((c) => c.name).join(', '))
        .join(' | ')})`,
      describeLoad(loadStart, loadEnd),
      `  floor: raw amqplib on one plain classic queue (stored as orbit stores its classic queues on this broker), prefetch ${concurrency}, ${formatInt(floorPlan.n)} resident messages of ${FLOOR_BODY_BYTES} bytes, consume → sendToQueue the same body to the same queue (persistent, confirm channel of a 2nd connection) → ack on the confirm; ${floorPlan.warmupMs / 1000} s warm-up, ${floorPlan.windowMs / 1000} s counted; first in every round`,
      ...selected.map((c) => `  ${c.name}: ${c.summary}`),
      ...notes,
      '',
      renderTable(
        [
          { header: 'queueType' },
          { header: 'round', align: 'right' },
          { header: 'contender' },
          { header: 'startup s', align: 'right' },
          { header: 'seconds', align: 'right' },
          { header: 'msgs/s', align: 'right' },
          { header: 'warm msgs/s', align: 'right' },
          { header: 'client CPU µs/msg', align: 'right' },
          { header: 'warm CPU µs/msg', align: 'right' },
        ],
        [
          ...floors.map((f) => [f.queueType, String(f.round), 'floor', '—', formatFixed(f.windowSeconds, 2), '—', formatInt(f.msgsPerSec), '—', formatFixed(f.cpuMicrosPerMsg, 0)]),
          ...results.map((x) => [
            x.queueType,
            String(x.round),
            x.contender,
            formatFixed(x.startupSeconds, 2),
            formatFixed(x.seconds, 2),
            formatInt(x.msgsPerSec),
            formatInt(x.warmMsgsPerSec),
            formatFixed(x.cpuMicrosPerMsg, 0),
            formatFixed(x.warmCpuMicrosPerMsg, 0),
          ]),
        ],
      ),
      '',
      `median over ${rounds} round(s); the ratios and the CPU are warm (without each run's first ${WARMUP_SHARE * 100} % of N, as the floor leaves out its warm-up):`,
      renderTable(SUMMARY_COLUMNS, summaryRows(summary)),
      '',
      ...targets.map(targetLine),
    ];
    return {
      benchmark: this.name,
      text,
      data: {
        benchmark: this.name,
        params: { n, concurrency, delayMs: RESCHEDULE_DELAY_MS, rounds, queueTypes: options.queueTypes, inProcess: options.inProcess },
        load: { start: loadStart, end: loadEnd },
        contenders: selected.map((c) => ({ name: c.name, summary: c.summary })),
        notes,
        rounds: results,
        floors,
        summary,
        targets,
      },
    };
  },
};

export const SUMMARY_COLUMNS: readonly Column[] = [
  { header: 'queueType' },
  { header: 'contender' },
  { header: 'N', align: 'right' },
  { header: 'seconds', align: 'right' },
  { header: 'msgs/s', align: 'right' },
  { header: 'warm msgs/s', align: 'right' },
  { header: `× ${BASELINE}`, align: 'right' },
  { header: `× ${PEER}`, align: 'right' },
  { header: '× floor', align: 'right' },
  { header: 'warm CPU µs/msg', align: 'right' },
];

export function summaryRows(summary: readonly ContenderSummary[]): string[][] {
  return summary.map((s) => [
    s.queueType,
    s.contender,
    String(s.n),
    formatFixed(s.seconds, 2),
    formatInt(s.msgsPerSec),
    formatInt(s.warmMsgsPerSec),
    s.ratio === undefined ? '—' : formatFixed(s.ratio, 2),
    s.peerRatio === undefined ? '—' : formatFixed(s.peerRatio, 2),
    s.floorRatio === undefined ? '—' : formatFixed(s.floorRatio, 2),
    formatFixed(s.cpuMicrosPerMsg, 0),
  ]);
}

function pick(names: readonly string[]): RescheduleContender[] {
  if (names.length === 0) return [...allContenders];
  const known = new Map(allContenders.map((c) => [c.name, c]));
  return names.map((name) => {
    const c = known.get(name);
    if (!c) throw new Error(`unknown contender "${name}" (known: ${[...known.keys()].join(', ')})`);
    return c;
  });
}

function summarize(queueType: QueueType, selected: readonly RescheduleContender[], results: readonly RoundResult[], floorRate: number): ContenderSummary[] {
  const rateOf = (name: string): number | undefined => {
    const mine = results.filter((r) => r.contender === name);
    return mine.length > 0 ? median(mine.map((r) => r.warmMsgsPerSec)) : undefined;
  };
  const baseRate = rateOf(BASELINE);
  const peerRate = rateOf(PEER);
  return selected.map((c) => {
    const mine = results.filter((r) => r.contender === c.name);
    const seconds = median(mine.map((r) => r.seconds));
    const msgsPerSec = mine[0]!.n / seconds;
    const warm = median(mine.map((r) => r.warmMsgsPerSec));
    return {
      queueType,
      contender: c.name,
      n: mine[0]!.n,
      seconds: round(seconds, 4),
      msgsPerSec: round(msgsPerSec, 1),
      warmMsgsPerSec: round(warm, 1),
      ratio: baseRate === undefined ? undefined : round(warm / baseRate, 3),
      peerRatio: peerRate === undefined ? undefined : round(warm / peerRate, 3),
      floorRatio: Number.isFinite(floorRate) && floorRate > 0 ? round(warm / floorRate, 3) : undefined,
      cpuMicrosPerMsg: round(median(mine.map((r) => r.warmCpuMicrosPerMsg)), 1),
    };
  });
}
