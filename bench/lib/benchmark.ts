/**
 * What `bench/main.ts` runs. A benchmark owns its contenders, its sizes and its rounds; main
 * only parses options, prints the machine, and prints (or emits as JSON) each report.
 */
import type { QueueType } from '../../src/config/types';

export interface BenchOptions {
  /** `--quick`: every benchmark picks its small sizes (the whole suite in a few minutes at most). */
  readonly quick: boolean;
  /** `--n`: messages per run, overriding each benchmark's own default. */
  readonly n: number | undefined;
  /** `--rounds`: overrides each benchmark's own default; each contender runs once per round. */
  readonly rounds: number | undefined;
  /** `--concurrency`: lane concurrency = consumer prefetch (reschedule; its default is 100). */
  readonly concurrency: number | undefined;
  /** `--max-warmup`: steady's longest warm-up before the counted window, ms; undefined: the mode's. */
  readonly maxWarmupMs?: number | undefined;
  /** `--window`: fill's logical messages awaiting their confirm at once; undefined: its default. */
  readonly window?: number | undefined;
  /** `delay.queueType` values to measure (each benchmark runs once per value where it matters). */
  readonly queueTypes: readonly QueueType[];
  /** `delay.unit` values (durations such as `1s`, `1m`) for the benchmarks where the unit matters; undefined: the benchmark's default for the mode. */
  readonly units: readonly string[] | undefined;
  /** `--tolerance`: `delay.tolerance` values (`0`, `0.02`, `2%`) for the steady and fill benchmarks. */
  readonly tolerances: readonly string[];
  /** `--tombstones`: outstanding cancels (of ids the loop never uses) each steady run starts with. */
  readonly tombstones: readonly number[];
  /** `--orbit-set key=value`: extra orbit config (dotted keys) for every steady and fill variant. */
  readonly orbitSettings: Readonly<Record<string, string>>;
  readonly amqpUrl: string;
  readonly redisUrl: string;
  /** Only these contenders (by name); all when empty. */
  readonly contenders: readonly string[];
  /** Run every contender in this process instead of a fresh child per run (for profiling). */
  readonly inProcess: boolean;
  /** steady, fill: refuse a broker whose file-handle limit cannot hold the ladder (bench/lib/broker-handles.ts); false with `--no-handle-check`. */
  readonly handleCheck: boolean;
  /** Progress lines (stderr, so `--json` output on stdout stays clean). */
  readonly progress: (line: string) => void;
}

export interface BenchReport {
  readonly benchmark: string;
  /** Human-readable lines: parameters and tables. */
  readonly text: readonly string[];
  /** Everything measured, for `--json`. */
  readonly data: unknown;
}

export interface Benchmark {
  readonly name: string;
  readonly description: string;
  run(options: BenchOptions): Promise<BenchReport>;
}

/** A target and whether this run met it, for the report and the JSON. */
export interface TargetResult {
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
}

export function targetLine(t: TargetResult): string {
  const status = t.met === undefined ? 'not measured' : t.met ? 'met' : 'NOT met';
  return `target: ${t.what} ${t.target} → ${status} (${t.measured})`;
}
