#!/usr/bin/env node
/**
 * `npm run bench [-- <benchmark…>] [options]`: runs the registered benchmarks against the
 * broker and prints the machine, per-round figures and medians (or JSON with --json).
 * Progress goes to stderr, results to stdout.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { QueueType } from '../src/config/types';
import { parseDuration } from '../src/config/durations';
import type { Benchmark, BenchReport } from './lib/benchmark';
import { defaultAmqpUrl } from './lib/broker';
import { cleanUpOnSignal } from './lib/cleanup';
import { describeMachine, machineFacts } from './lib/machine';
import { defaultRedisUrl } from './lib/redis';
import { nowSeconds } from './lib/stats';
import { bundlesBenchmark } from './bundles';
import { fillBenchmark } from './fill';
import { isToleranceText } from './lib/orbit-settings';
import { latenessBenchmark } from './lateness';
import { memoryBenchmark } from './memory';
import { rescheduleBenchmark } from './reschedule';
import { residentBenchmark } from './resident';
import { rssBenchmark } from './rss';
import { seedingBenchmark } from './seeding';
import { steadyBenchmark } from './steady';

/** Every benchmark, by name, in the order they run. Add one: write bench/<name>/index.ts and list it here. */
const BENCHMARKS: readonly Benchmark[] = [
  rescheduleBenchmark,
  memoryBenchmark,
  residentBenchmark,
  seedingBenchmark,
  latenessBenchmark,
  rssBenchmark,
  bundlesBenchmark,
  steadyBenchmark,
  fillBenchmark,
];

function positiveInt(value: string): number {
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function queueTypes(value: string): QueueType[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of list) if (t !== 'classic' && t !== 'quorum') throw new InvalidArgumentError(`"${t}" is not classic or quorum`);
  if (list.length === 0) throw new InvalidArgumentError('give classic, quorum or both');
  return list as QueueType[];
}

function units(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const u of list) {
    try {
      if (parseDuration(u, '--units') <= 0) throw new Error('zero');
    } catch {
      throw new InvalidArgumentError(`"${u}" is not a positive duration (e.g. 1s, 1m)`);
    }
  }
  return list;
}

function tolerances(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of list) if (!isToleranceText(t)) throw new InvalidArgumentError(`"${t}" is not a tolerance (a fraction such as 0.02, or a percentage such as 2%)`);
  if (list.length === 0) throw new InvalidArgumentError('give at least one tolerance, e.g. 0 or 0,2%');
  return list;
}

function counts(value: string): number[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (list.length === 0 || list.some((n) => !Number.isSafeInteger(n) || n < 0)) throw new InvalidArgumentError(`"${value}" is not a list of counts, e.g. 0,100000`);
  return list;
}

function orbitSetting(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`"${value}" is not key=value (e.g. delay.unit=500ms)`);
  return { ...previous, [value.slice(0, eq).trim()]: value.slice(eq + 1) };
}

interface CliOptions {
  n?: number;
  quick?: boolean;
  rounds?: number;
  concurrency?: number;
  window?: number;
  maxWarmup?: number;
  queueTypes: QueueType[];
  units?: string[];
  tolerance: string[];
  tombstones: number[];
  orbitSet?: Record<string, string>;
  contenders?: string;
  amqpUrl?: string;
  redisUrl?: string;
  json?: boolean;
  list?: boolean;
  inProcess?: boolean;
  handleCheck: boolean;
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command()
    .name('orbit-bench')
    .description('orbit benchmarks against a real RabbitMQ (figures: docs/BENCHMARKS.md)')
    .argument('[benchmarks...]', `benchmarks to run (${BENCHMARKS.map((b) => b.name).join(', ')}); all when none given`)
    .option('--quick', 'small sizes everywhere: the whole suite in a couple of minutes (see docs/BENCHMARKS.md)')
    .addOption(new Option('--n <count>', "messages per run, overriding every benchmark's default for the mode").argParser(positiveInt))
    .addOption(new Option('--rounds <count>', "rounds (each contender once per round, alternating order), overriding each benchmark's default").argParser(positiveInt))
    .addOption(new Option('--concurrency <count>', 'reschedule: lane concurrency = consumer prefetch, for every contender (default 100)').argParser(positiveInt))
    .addOption(new Option('--max-warmup <seconds>', 'steady: the longest warm-up before the counted window, for a loop that needs long to reach equilibrium (default 8 with --quick, 30 otherwise)').argParser(positiveInt))
    .addOption(new Option('--window <count>', "fill: logical messages awaiting their confirm at once (default 5,000, orbit seed's for a lane of bundle.max 100)").argParser(positiveInt))
    .addOption(new Option('--queue-types <list>', 'delay.queueType values to measure: classic, quorum or both').argParser(queueTypes).default(['classic', 'quorum']))
    .addOption(new Option('--units <list>', 'delay.unit values for the lateness benchmark (default: 1s with --quick, 1s,1m otherwise)').argParser(units))
    .addOption(new Option('--tolerance <list>', 'steady and fill: delay.tolerance values to measure (fractions or percentages, e.g. 0,2%)').argParser(tolerances).default(['0']))
    .addOption(new Option('--tombstones <list>', 'steady: outstanding cancels each run starts with (of ids it never uses), e.g. 0,100000').argParser(counts).default([0]))
    .addOption(new Option('--orbit-set <key=value>', 'steady and fill: extra orbit config for every variant (dotted key, repeatable), e.g. --orbit-set delay.unit=500ms').argParser(orbitSetting))
    .option('--contenders <names>', 'reschedule and seeding: comma-separated contenders to run (default: all); steady: unbundled, bundled')
    .option('--amqp-url <url>', 'broker (default: $ORBIT_BENCH_AMQP_URL, $ORBIT_TEST_AMQP_URL or amqp://guest:guest@127.0.0.1:5672)')
    .option('--redis-url <url>', 'Redis for BullMQ (default: $ORBIT_BENCH_REDIS_URL or redis://127.0.0.1:6379)')
    .option('--json', 'print one JSON document on stdout instead of tables')
    .option('--no-handle-check', "steady, fill: run a ladder even when the broker's file-handle limit cannot be read or looks too small (a broker out of handles stops answering)")
    .option('--in-process', 'run every contender in this process (default: a fresh node process per run); handy with node --cpu-prof')
    .option('--list', 'list the benchmarks and exit')
    .showHelpAfterError();
  program.parse([...argv]);
  const opts = program.opts<CliOptions>();

  if (opts.list) {
    for (const b of BENCHMARKS) console.log(`${b.name.padEnd(12)} ${b.description}`);
    return 0;
  }

  const wanted = program.args.length > 0 ? program.args : BENCHMARKS.map((b) => b.name);
  const benchmarks = wanted.map((name) => {
    const b = BENCHMARKS.find((x) => x.name === name);
    return b ?? program.error(`unknown benchmark "${name}" (known: ${BENCHMARKS.map((x) => x.name).join(', ')})`);
  });

  // Children clean up after themselves; in-process runs need this process to.
  if (opts.inProcess) cleanUpOnSignal();
  const amqpUrl = opts.amqpUrl ?? defaultAmqpUrl();
  const suiteStarted = nowSeconds();
  const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const machine = await machineFacts(amqpUrl);
  if (!opts.json) console.log(['machine', ...describeMachine(machine).map((l) => `  ${l}`), ''].join('\n'));

  const reports: BenchReport[] = [];
  const failed: string[] = [];
  for (const benchmark of benchmarks) {
    const started = nowSeconds();
    let report: BenchReport;
    try {
      report = await benchmark.run({
        quick: opts.quick ?? false,
        n: opts.n,
        rounds: opts.rounds,
        concurrency: opts.concurrency,
        window: opts.window,
        maxWarmupMs: opts.maxWarmup === undefined ? undefined : opts.maxWarmup * 1000,
        queueTypes: opts.queueTypes,
        units: opts.units,
        tolerances: opts.tolerance,
        tombstones: opts.tombstones,
        orbitSettings: opts.orbitSet ?? {},
        amqpUrl,
        redisUrl: opts.redisUrl ?? defaultRedisUrl(),
        contenders: (opts.contenders ?? '').split(',').map((s) => s.trim()).filter(Boolean),
        inProcess: opts.inProcess ?? false,
        handleCheck: opts.handleCheck,
        progress,
      });
    } catch (err) {
      // One failed benchmark does not throw away the others' figures.
      failed.push(benchmark.name);
      const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
      progress(`${benchmark.name} FAILED: ${message}`);
      report = { benchmark: benchmark.name, text: [`${benchmark.name} — FAILED: ${message.split('\n')[0]}`], data: { benchmark: benchmark.name, error: message } };
    }
    reports.push(report);
    progress(`${benchmark.name}: ${(nowSeconds() - started).toFixed(0)} s`);
    if (!opts.json) console.log([...report.text, `(${benchmark.name} took ${(nowSeconds() - started).toFixed(0)} s)`, ''].join('\n'));
  }
  if (!opts.json) console.log(`all benchmarks took ${(nowSeconds() - suiteStarted).toFixed(0)} s`);
  if (opts.json) console.log(JSON.stringify({ machine, benchmarks: reports.map((r) => r.data) }, null, 2));
  if (failed.length > 0) progress(`failed: ${failed.join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
