import type { QueueType } from '../../src/config/types';
import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { brokerIsLocal } from '../lib/broker-stats';
import { runInChild } from '../lib/isolate';
import { redisAvailable } from '../lib/redis';
import { describeLoad, loadAverage } from '../lib/load';
import { alternatingOrder, median, nowSeconds, round } from '../lib/stats';
import { formatFixed, formatInt, renderTable } from '../lib/table';
import type { BundleLatenessJob, BundleLatenessResult } from './lateness';
import type { MemoryJob, MemoryResult } from './memory';
import type { RescheduleJob, RescheduleResult } from './reschedule';
import { runBundlesJob, type BundlesJob } from './run-one';
import type { SeedingJob, SeedingResult } from './seeding';

const RUN_ONE_SCRIPT = require.resolve('./run-one');

/** The four parts, in the order they run; `ORBIT_BENCH_BUNDLES_PARTS=reschedule,lateness` runs a subset. */
export const PARTS = ['reschedule', 'memory', 'seeding', 'lateness'] as const;
type Part = (typeof PARTS)[number];

const HOUR = 3_600_000;
const BODY_BYTES = 80;

/** Sizes per mode. Quick: the whole benchmark in ≈ 2–3 minutes on 2 cores. */
export const PLAN = {
  quick: {
    reschedule: { n: 20_000, rounds: 1 },
    memory: { n: 1_000_000 },
    seeding: { rawN: 20_000, bundledN: 200_000, rounds: 1 },
    lateness: { rates: [500], seconds: 8, minDelayMs: 3_000, maxDelayMs: 6_000 },
  },
  full: {
    reschedule: { n: 200_000, rounds: 2 },
    memory: { n: 10_000_000 },
    seeding: { rawN: 100_000, bundledN: 1_000_000, rounds: 2 },
    lateness: { rates: [500, 2000], seconds: 30, minDelayMs: 8_000, maxDelayMs: 16_000 },
  },
} as const;

/** bundle.max values of the reschedule loop (1 = bundles off: orbit as in issue 5). */
export const RESCHEDULE_BUNDLES = [1, 10, 100, 1000] as const;
export const RESCHEDULE_LINGER_MS = 50;
/** bundle.max values for resident memory and seeding. */
export const RESIDENT_BUNDLES = [100, 1000] as const;
export const MEMORY_LINGER_MS = 100;
export const SEED_LINGER_MS = 50;
/** Lateness: bundle.max 100 at these lingers. */
export const LATENESS_BUNDLE = 100;
export const LATENESS_LINGERS_MS = [0, 100, 1000] as const;
const DEFAULT_CONCURRENCY = 100;

/** Issue 8's targets (2 cores). */
export const TARGET_RATIO = 10;
export const TARGET_RATIO_FROM_BUNDLE = 100;
export const TARGET_MB_PER_MILLION = 1;
/** Lateness p99 ≤ unit + linger + this. */
export const TARGET_LATENESS_SLACK_MS = 1000;
const UNIT_MS = 1000;

/**
 * A lane's concurrency for bundle.max B: 2 × B lets the messages of two deliveries run at
 * once (prefetch 2 × ceil(concurrency / B) = 4 bundles), so an outgoing bundle of
 * replacements fills in one go, and never less than the raw loop's prefetch. (Before
 * handler slots were freed at handler return, fewer slots than B also throttled the lane
 * to one bundle per linger; see "src notes" in docs/BENCHMARKS.md.)
 */
export function laneConcurrency(bundleMax: number, base: number): number {
  return bundleMax > 1 ? Math.max(base, 2 * bundleMax) : base;
}

interface RescheduleRow extends RescheduleResult {
  readonly round: number;
  readonly contender: string;
  readonly bundleMax: number;
  readonly concurrency: number;
  readonly n: number;
  readonly msgsPerSec: number;
  readonly cpuMicrosPerMsg: number;
}

interface SeedingRow extends SeedingResult {
  readonly round: number;
  readonly contender: string;
  readonly bundleMax: number;
  readonly n: number;
  readonly msgsPerSec: number;
  readonly cpuMicrosPerMsg: number;
}

interface MemoryRow extends MemoryResult {
  readonly bundleMax: number;
  readonly n: number;
  readonly spreadMs: number;
}

interface LatenessRow extends BundleLatenessResult {
  readonly bundleMax: number;
  readonly lingerMs: number;
  readonly rate: number;
  readonly seconds: number;
  readonly concurrency: number;
}

/**
 * Bundles (issue 8): many logical messages in one AMQP message. Four parts, each run in a
 * fresh node process and namespace: the reschedule loop in logical msgs/s with bundles of
 * 1–1000 against the raw amqplib loop; broker RAM and disk per million resident logical
 * messages; seeding rate; lateness at several lingers.
 */
export const bundlesBenchmark: Benchmark = {
  name: 'bundles',
  description: 'bundled lanes (issue 8): reschedule loop in logical msgs/s vs raw amqplib, RAM/disk per million resident, seeding rate, lateness by linger',
  async run(options: BenchOptions): Promise<BenchReport> {
    const plan = options.quick ? PLAN.quick : PLAN.full;
    const queueType: QueueType = options.queueTypes[0] ?? 'classic';
    const base = options.concurrency ?? DEFAULT_CONCURRENCY;
    const parts = partsWanted();
    const loadStart = loadAverage();
    const text: string[] = [
      `bundles — ${this.description}`,
      `delay.queueType ${queueType} (bundles measures the first of --queue-types only), unit 1 s, ${options.inProcess ? 'all in this process' : 'each run in a fresh node process and namespace'}; parts: ${parts.join(', ')}`,
      '',
    ];
    const targets: TargetResult[] = [];
    const data: Record<string, unknown> = { benchmark: this.name, queueType, parts };
    const run = async <R>(job: BundlesJob): Promise<R> => {
      const t0 = nowSeconds();
      const r = options.inProcess ? await runBundlesJob(job, options.progress) : await runInChild<BundlesJob, R>(RUN_ONE_SCRIPT, job);
      options.progress(`${job.label}: done in ${(nowSeconds() - t0).toFixed(1)} s`);
      return r as R;
    };
    const section = async (part: Part, body: () => Promise<void>) => {
      const l0 = loadAverage();
      const t0 = nowSeconds();
      try {
        await body();
      } catch (err) {
        const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
        options.progress(`bundles ${part} FAILED: ${message}`);
        text.push(`${part} — FAILED: ${message.split('\n')[0]}`, '');
        targets.push({ what: `bundles ${part}`, target: 'completes', measured: `failed: ${message.split('\n')[0]}`, met: false });
        data[part] = { error: message };
      }
      text.push(`(${part}: ${(nowSeconds() - t0).toFixed(0)} s, ${describeLoad(l0, loadAverage())})`, '');
    };

    // 1. The reschedule loop.
    if (parts.includes('reschedule')) {
      await section('reschedule', async () => {
        const n = options.n ?? plan.reschedule.n;
        const rounds = options.rounds ?? plan.reschedule.rounds;
        // BullMQ, the peer issue 5 asks orbit to beat, runs in the same rounds when Redis is there.
        const withBullmq = await redisAvailable(options.redisUrl);
        if (!withBullmq) text.push(`bullmq skipped: no Redis at ${options.redisUrl}`);
        const contenders = [
          { name: 'raw-amqplib', bundleMax: 1 },
          ...(withBullmq ? [{ name: 'bullmq', bundleMax: 1 }] : []),
          ...RESCHEDULE_BUNDLES.map((b) => ({ name: `orbit b=${b}`, bundleMax: b })),
        ];
        const rows: RescheduleRow[] = [];
        for (const [r, order] of alternatingOrder(contenders, rounds).entries()) {
          for (const c of order) {
            const unbundled = c.name === 'raw-amqplib' || c.name === 'bullmq';
            const concurrency = unbundled ? base : laneConcurrency(c.bundleMax, base);
            const job: RescheduleJob = {
              kind: 'reschedule',
              label: `bundles reschedule round ${r + 1}/${rounds} ${c.name}`,
              contender: c.name === 'raw-amqplib' ? 'raw-amqplib' : c.name === 'bullmq' ? 'bullmq' : 'orbit',
              redisUrl: options.redisUrl,
              bundleMax: c.bundleMax,
              lingerMs: RESCHEDULE_LINGER_MS,
              n,
              concurrency,
              delayMs: HOUR,
              queueType,
              amqpUrl: options.amqpUrl,
            };
            const res = await run<RescheduleResult>(job);
            const row: RescheduleRow = {
              ...res,
              round: r + 1,
              contender: c.name,
              bundleMax: c.bundleMax,
              concurrency,
              n,
              msgsPerSec: round(n / res.loopSeconds, 1),
              cpuMicrosPerMsg: round((res.clientCpuSeconds * 1e6) / n, 2),
            };
            rows.push(row);
            options.progress(`${job.label}: ${formatFixed(res.loopSeconds, 2)} s, ${formatInt(row.msgsPerSec)} logical msgs/s, ${formatInt(res.heldAmqp)} AMQP messages hold ${formatInt(res.heldLogical)} logical`);
          }
        }
        const rate = (name: string) => n / median(rows.filter((x) => x.contender === name).map((x) => x.loopSeconds));
        const rawRate = rate('raw-amqplib');
        const bullRate = withBullmq ? rate('bullmq') : undefined;
        const summary = contenders.map((c) => {
          const mine = rows.filter((x) => x.contender === c.name);
          const msgsPerSec = rate(c.name);
          return {
            contender: c.name,
            bundleMax: c.bundleMax,
            concurrency: mine[0]!.concurrency,
            prefetch: mine[0]!.prefetch,
            seconds: round(median(mine.map((x) => x.loopSeconds)), 3),
            msgsPerSec: round(msgsPerSec, 0),
            ratio: round(msgsPerSec / rawRate, 2),
            bullmqRatio: bullRate === undefined ? undefined : round(msgsPerSec / bullRate, 2),
            amqpPerSec: round((msgsPerSec * median(mine.map((x) => x.heldAmqp))) / n, 0),
            cpuMicrosPerMsg: round(median(mine.map((x) => x.cpuMicrosPerMsg)), 1),
          };
        });
        for (const s of summary.filter((x) => x.bundleMax >= TARGET_RATIO_FROM_BUNDLE && x.contender !== 'raw-amqplib')) {
          targets.push({
            what: `reschedule loop, ${s.contender}, logical msgs/s ≥`,
            target: `${TARGET_RATIO} × raw-amqplib`,
            measured: `${formatFixed(s.ratio, 1)}× (${formatInt(s.msgsPerSec)} vs ${formatInt(rawRate)} msgs/s)`,
            met: s.ratio >= TARGET_RATIO,
          });
          if (s.bullmqRatio !== undefined)
            targets.push({
              what: `reschedule loop, ${s.contender}, logical msgs/s ≥`,
              target: '1 × bullmq (issue 5)',
              measured: `${formatFixed(s.bullmqRatio, 1)}× (${formatInt(s.msgsPerSec)} vs ${formatInt(bullRate!)} msgs/s)`,
              met: s.bullmqRatio >= 1,
            });
        }
        text.push(
          `1. reschedule loop — N = ${formatInt(n)} logical messages preloaded in the lane, each rescheduled 1 h ahead (confirmed, then acked); ${rounds} round(s), alternating; linger ${RESCHEDULE_LINGER_MS} ms`,
          `   raw-amqplib: bench/reschedule's baseline (prefetch ${base}, one AMQP message per logical message); bullmq: bench/reschedule's BullMQ worker (concurrency ${base}, re-adds each job 1 h delayed, Redis without persistence); orbit b=B: Daemon, lane bundle.max B, concurrency max(${base}, 2 × B), preloaded as bundles with the Scheduler`,
          '   verified: lane empty; the hour-ahead level drained and decoded holds N logical messages, N distinct ids, runs = 1 (raw: N AMQP messages; bullmq: N delayed jobs, nothing else left)',
          '',
          renderTable(
            [{ header: 'round', align: 'right' }, { header: 'contender' }, { header: 'seconds', align: 'right' }, { header: 'logical msgs/s', align: 'right' }, { header: 'AMQP in → out', align: 'right' }, { header: 'client CPU µs/msg', align: 'right' }, { header: 'startup s', align: 'right' }],
            rows.map((x) => [String(x.round), x.contender, formatFixed(x.loopSeconds, 2), formatInt(x.msgsPerSec), `${formatInt(x.preloadedAmqp)} → ${formatInt(x.heldAmqp)}`, formatFixed(x.cpuMicrosPerMsg, 1), formatFixed(x.startupSeconds, 2)]),
          ),
          '',
          `median over ${rounds} round(s):`,
          renderTable(
            [{ header: 'contender' }, { header: 'concurrency', align: 'right' }, { header: 'prefetch', align: 'right' }, { header: 'seconds', align: 'right' }, { header: 'logical msgs/s', align: 'right' }, { header: '× raw-amqplib', align: 'right' }, { header: '× bullmq', align: 'right' }, { header: 'AMQP msgs/s', align: 'right' }, { header: 'client CPU µs/msg', align: 'right' }],
            summary.map((s) => [s.contender, formatInt(s.concurrency), formatInt(s.prefetch), formatFixed(s.seconds, 2), formatInt(s.msgsPerSec), formatFixed(s.ratio, 2), s.bullmqRatio === undefined ? '—' : formatFixed(s.bullmqRatio, 2), formatInt(s.amqpPerSec), formatFixed(s.cpuMicrosPerMsg, 1)]),
          ),
          '',
        );
        data.reschedule = { n, rounds, lingerMs: RESCHEDULE_LINGER_MS, baseConcurrency: base, rows, summary };
      });
    }

    // 2. Resident memory.
    if (parts.includes('memory')) {
      await section('memory', async () => {
        if (!(await brokerIsLocal())) {
          text.push('2. resident memory — skipped: rabbitmqctl cannot reach the broker from this host', '');
          return;
        }
        const n = options.n ?? plan.memory.n;
        const rows: MemoryRow[] = [];
        for (const b of RESIDENT_BUNDLES) {
          // Each due second gets about `max` messages on average, so bundles can fill.
          const spreadMs = Math.ceil(n / b) * UNIT_MS;
          const job: MemoryJob = { kind: 'memory', label: `bundles memory b=${b}`, bundleMax: b, lingerMs: MEMORY_LINGER_MS, n, bytes: BODY_BYTES, offsetMs: HOUR, spreadMs, queueType, amqpUrl: options.amqpUrl };
          const res = await run<MemoryResult>(job);
          rows.push({ ...res, bundleMax: b, n, spreadMs });
          options.progress(`${job.label}: own queues ${formatFixed(res.total.ownProcs, 2)} MB/M logical, msg_index ${formatFixed(res.total.msgIndex, 2)}, node RAM ${formatFixed(res.total.ram, 1)}, disk ${formatFixed(res.total.disk, 1)}`);
        }
        const mb = (v: number | undefined) => (v === undefined ? '—' : formatFixed(v, 2));
        const growthTable = (pick: (r: MemoryRow) => MemoryResult['total']) =>
          renderTable(
            [
              { header: 'bundle.max' },
              { header: 'own queues RAM', align: 'right' },
              { header: '(binaries)', align: 'right' },
              { header: 'msg_index', align: 'right' },
              { header: 'own + msg_index', align: 'right' },
              { header: 'node RAM', align: 'right' },
              { header: 'Erlang alloc', align: 'right' },
              { header: 'disk (node)', align: 'right' },
              { header: 'own queue files', align: 'right' },
            ],
            rows.map((r) => {
              const g = pick(r);
              return [String(r.bundleMax), mb(g.ownProcs), mb(g.ownBinaries), mb(g.msgIndex), mb(g.ownProcs + g.msgIndex), mb(g.ram), mb(g.erlang), mb(g.disk), mb(g.ownFiles)];
            }),
          );
        for (const r of rows) {
          const own = r.total.ownProcs + r.total.msgIndex;
          targets.push({
            what: `broker RAM per million resident logical (bundle.max ${r.bundleMax}), own queues + msg_index, declared-empty → N ≤`,
            target: `${TARGET_MB_PER_MILLION} MB`,
            measured: `${formatFixed(own, 2)} MB at N = ${formatInt(r.n)} (marginal ${formatFixed(r.marginal.ownProcs + r.marginal.msgIndex, 2)}); node total ${formatFixed(r.total.ram, 1)} MB (marginal ${formatFixed(r.marginal.ram, 1)})`,
            met: own <= TARGET_MB_PER_MILLION,
          });
        }
        text.push(
          `2. resident memory — N = ${formatInt(n)} logical messages (${BODY_BYTES}-byte bodies) seeded with orbit's seeder into a lane with bundle.max B (linger ${MEMORY_LINGER_MS} ms), due 1 h + [0, N/B s) ahead in descending order (≈ B per due second), read as bench/memory does after the topology is declared, at N/2 and at N`,
          '   own queues RAM: the namespace\'s queue processes + the binaries they reference ((binaries): the off-heap buffers alone); msg_index: the node\'s message-store index (bundles at or above queue_index_embed_msgs_below — 4 KB by default, 16 KB with docker/rabbitmq/rabbitmq.conf — are kept in the shared message store, not the queue\'s own store); node RAM: the node total (RSS, moved by every client of the shared broker)',
          '',
          renderTable(
            [{ header: 'bundle.max' }, { header: 'due window' }, { header: 'seed s', align: 'right' }, { header: 'logical msgs/s', align: 'right' }, { header: 'window', align: 'right' }, { header: 'AMQP messages', align: 'right' }, { header: 'mean bundle', align: 'right' }, { header: 'body MB per M logical', align: 'right' }],
            rows.map((r) => [
              String(r.bundleMax),
              `1 h + ${formatFixed(r.spreadMs / HOUR, 2)} h`,
              formatFixed(r.seedSeconds, 1),
              formatInt(r.n / r.seedSeconds),
              formatInt(r.window),
              formatInt(r.heldAmqp),
              formatFixed(r.heldLogical / r.heldAmqp, 1),
              formatFixed((r.bodyBytes / r.heldLogical) * 1e6 / 1e6, 1),
            ]),
          ),
          '',
          `growth from declared-empty to N = ${formatInt(n)}, MB per million logical messages:`,
          growthTable((r) => r.total),
          '',
          'marginal growth, N/2 → N, MB per further million logical:',
          growthTable((r) => r.marginal),
          '',
        );
        data.memory = { n, lingerMs: MEMORY_LINGER_MS, rows };
      });
    }

    // 3. Seeding rate.
    if (parts.includes('seeding')) {
      await section('seeding', async () => {
        const rawN = options.n ?? plan.seeding.rawN;
        const bundledN = options.n ?? plan.seeding.bundledN;
        const rounds = options.rounds ?? plan.seeding.rounds;
        const contenders = [{ name: 'raw-amqplib', bundleMax: 1 }, ...RESIDENT_BUNDLES.map((b) => ({ name: `orbit-seed b=${b}`, bundleMax: b }))];
        const rows: SeedingRow[] = [];
        for (const [r, order] of alternatingOrder(contenders, rounds).entries()) {
          for (const c of order) {
            const raw = c.name === 'raw-amqplib';
            const n = raw ? rawN : bundledN;
            const job: SeedingJob = { kind: 'seeding', label: `bundles seeding round ${r + 1}/${rounds} ${c.name}`, contender: raw ? 'raw-amqplib' : 'orbit-seed', bundleMax: c.bundleMax, lingerMs: SEED_LINGER_MS, n, bytes: BODY_BYTES, delayMs: HOUR, queueType, amqpUrl: options.amqpUrl };
            const res = await run<SeedingResult>(job);
            rows.push({ ...res, round: r + 1, contender: c.name, bundleMax: c.bundleMax, n, msgsPerSec: round(n / res.seconds, 0), cpuMicrosPerMsg: round((res.clientCpuSeconds * 1e6) / n, 2) });
            options.progress(`${job.label}: ${formatFixed(res.seconds, 2)} s, ${formatInt(n / res.seconds)} logical msgs/s`);
          }
        }
        const rateOf = (name: string) => {
          const mine = rows.filter((x) => x.contender === name);
          return mine[0]!.n / median(mine.map((x) => x.seconds));
        };
        const rawRate = rateOf('raw-amqplib');
        const summary = contenders.map((c) => {
          const mine = rows.filter((x) => x.contender === c.name);
          const msgsPerSec = rateOf(c.name);
          return { contender: c.name, n: mine[0]!.n, window: mine[0]!.window, seconds: round(median(mine.map((x) => x.seconds)), 3), msgsPerSec: round(msgsPerSec, 0), ratio: round(msgsPerSec / rawRate, 2), amqp: mine[0]!.heldAmqp, cpuMicrosPerMsg: round(median(mine.map((x) => x.cpuMicrosPerMsg)), 1) };
        });
        text.push(
          `3. seeding rate — generated ${BODY_BYTES}-byte messages, all 1 h ahead, confirmed: bench/seeding's raw amqplib publisher loop (window 2,000, one AMQP message each) vs orbit seed() into a lane with bundle.max B (linger ${SEED_LINGER_MS} ms, orbit seed's default window for the lane); raw N = ${formatInt(rawN)}, bundled N = ${formatInt(bundledN)} (a bundled run of the raw N would last a fraction of a second); ${rounds} round(s)`,
          '   verified: raw: N AMQP messages one hour ahead; bundled: drained and decoded, N logical messages, N distinct ids',
          '',
          renderTable(
            [{ header: 'contender' }, { header: 'N', align: 'right' }, { header: 'window', align: 'right' }, { header: 'seconds', align: 'right' }, { header: 'logical msgs/s', align: 'right' }, { header: '× raw-amqplib', align: 'right' }, { header: 'AMQP messages', align: 'right' }, { header: 'client CPU µs/msg', align: 'right' }],
            summary.map((s) => [s.contender, formatInt(s.n), formatInt(s.window), formatFixed(s.seconds, 2), formatInt(s.msgsPerSec), formatFixed(s.ratio, 2), formatInt(s.amqp), formatFixed(s.cpuMicrosPerMsg, 1)]),
          ),
          rounds > 1 ? `(median of ${rounds} rounds; per round: ${rows.map((x) => `${x.contender} ${formatInt(x.msgsPerSec)}`).join(', ')})` : '',
          'no seeding target in issue 8: figures and ratios only',
          '',
        );
        data.seeding = { rawN, bundledN, rounds, lingerMs: SEED_LINGER_MS, rows, summary };
      });
    }

    // 4. Lateness by linger.
    if (parts.includes('lateness')) {
      await section('lateness', async () => {
        const rows: LatenessRow[] = [];
        const lp = plan.lateness;
        for (const rate of lp.rates) {
          const seconds = options.n ? Math.max(1, Math.round(options.n / rate)) : lp.seconds;
          for (const lingerMs of LATENESS_LINGERS_MS) {
            const concurrency = laneConcurrency(LATENESS_BUNDLE, base);
            const job: BundleLatenessJob = {
              kind: 'lateness',
              label: `bundles lateness ${rate}/s linger ${lingerMs} ms`,
              bundleMax: LATENESS_BUNDLE,
              lingerMs,
              concurrency,
              rate,
              seconds,
              minDelayMs: lp.minDelayMs,
              maxDelayMs: lp.maxDelayMs,
              queueType,
              amqpUrl: options.amqpUrl,
            };
            const res = await run<BundleLatenessResult>(job);
            rows.push({ ...res, bundleMax: LATENESS_BUNDLE, lingerMs, rate, seconds, concurrency });
            options.progress(`${job.label}: p50 ${formatInt(res.p50Ms)} ms, p99 ${formatInt(res.p99Ms)} ms, max ${formatInt(res.maxMs)} ms (${res.handled}/${res.n}, ${res.deliveries} deliveries)`);
          }
        }
        for (const r of rows) {
          const limit = UNIT_MS + r.lingerMs + TARGET_LATENESS_SLACK_MS;
          const complete = r.handled >= r.n;
          targets.push({
            what: `lateness p99, bundle.max ${r.bundleMax}, linger ${formatInt(r.lingerMs)} ms, ${formatInt(r.rate)}/s ≤`,
            target: `unit + linger + 1 s = ${formatInt(limit)} ms`,
            measured: `${formatInt(r.p99Ms)} ms${complete ? '' : `, only ${r.handled} of ${r.n} handled in time`}`,
            met: complete && r.p99Ms <= limit,
          });
        }
        text.push(
          `4. lateness — orbit seed publishes msgs/s (paced) with random delays ${lp.minDelayMs / 1000}–${lp.maxDelayMs / 1000} s (unit 1 s) into a lane with bundle.max ${LATENESS_BUNDLE} at each linger, while a daemon (concurrency ${laneConcurrency(LATENESS_BUNDLE, base)}, handler returns at once, work-ahead off) consumes; lateness = handler start − due of every logical message`,
          '',
          renderTable(
            [
              { header: 'linger ms', align: 'right' },
              { header: 'msgs/s due', align: 'right' },
              { header: 'for s', align: 'right' },
              { header: 'handled', align: 'right' },
              { header: 'mean bundle', align: 'right' },
              { header: 'p50 ms', align: 'right' },
              { header: 'p90 ms', align: 'right' },
              { header: 'p99 ms', align: 'right' },
              { header: 'max ms', align: 'right' },
              { header: 'target ms', align: 'right' },
              { header: 'p50 by tenth of the run, ms' },
            ],
            rows.map((r) => [
              formatInt(r.lingerMs),
              formatInt(r.rate),
              String(r.seconds),
              `${formatInt(r.handled)}/${formatInt(r.n)}`,
              r.deliveries > 0 ? formatFixed(Math.min(r.handled, r.n) / r.deliveries, 1) : '—',
              formatInt(r.p50Ms),
              formatInt(r.p90Ms),
              formatInt(r.p99Ms),
              formatInt(r.maxMs),
              formatInt(UNIT_MS + r.lingerMs + TARGET_LATENESS_SLACK_MS),
              r.p50ByTenthMs.map((v) => formatInt(v)).join(' '),
            ]),
          ),
          '',
        );
        data.lateness = { bundleMax: LATENESS_BUNDLE, ...lp, rows };
      });
    }

    const loadEnd = loadAverage();
    text.splice(2, 0, describeLoad(loadStart, loadEnd));
    text.push(...targets.map(targetLine));
    data.load = { start: loadStart, end: loadEnd };
    data.targets = targets;
    return { benchmark: this.name, text, data };
  },
};

function partsWanted(): Part[] {
  const env = process.env.ORBIT_BENCH_BUNDLES_PARTS;
  if (!env) return [...PARTS];
  const list = env.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of list) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`ORBIT_BENCH_BUNDLES_PARTS: unknown part "${p}" (known: ${PARTS.join(', ')})`);
  return list as Part[];
}
