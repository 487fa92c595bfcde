import { join } from 'node:path';
import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { runInChild } from '../lib/isolate';
import { describeLoad, loadAverage } from '../lib/load';
import { shippedBrokerConfig, startPrivateNode } from '../lib/private-node';
import { redisAvailable } from '../lib/redis';
import { round } from '../lib/stats';
import { formatFixed, formatInt, renderTable } from '../lib/table';
import { measureBullmq, type StoreResult } from '../memory';
import { runResident, type ResidentJob, type ResidentReading, type ResidentResult } from './resident';

const RUN_ONE_SCRIPT = require.resolve('./run-one');
/** The repository: config/default.json and docker/rabbitmq/ are read from it (bench/resident → dist/bench/resident when built). */
const REPO_ROOT = join(__dirname, '..', '..', ...(__dirname.includes(`${join('dist', 'bench')}`) ? ['..'] : []));

/** Resident messages at the last reading; the first reading is at a tenth. Full: the 1 M (10 M: `--n 10000000`). */
export const DEFAULTS = { quick: 200_000, full: 1_000_000 } as const;
/**
 * BullMQ's N at most: Redis holds its delayed jobs in RAM (~1.15 GB per million measured here),
 * and the local Redis is shared with the machine's other work; its cost per job is linear, so
 * a 10 M orbit run compares against it at this N.
 */
export const BULLMQ_MAX_N = 2_000_000;
/** Issue 14: broker memory per further million resident, node-wide, on the defaults. */
export const TARGET_MB_PER_MILLION = 5;
const MB = 1e6;

interface NodeKind {
  readonly name: string;
  readonly describe: string;
}

const KINDS: readonly NodeKind[] = [
  { name: 'stock', describe: 'a stock RabbitMQ (nothing set but its listener)' },
  { name: 'shipped', describe: "docker/rabbitmq/rabbitmq.conf and advanced.config (raft.wal_max_size_bytes 64 MB among them; the management and Prometheus plugins and their ports left out)" },
];

interface NodeRun {
  readonly kind: NodeKind;
  readonly result?: ResidentResult;
  readonly error?: string;
}

/** MB per million logical messages from reading `a` to `b`. */
function perMillion(a: ResidentReading, b: ResidentReading, pick: (r: ResidentReading) => number): number {
  return round(((pick(b) - pick(a)) / (b.resident - a.resident)) * 1e6 / MB, 2);
}

/**
 * Broker memory on the shipped defaults, node-wide, on the user's workload: on a fresh private
 * node per broker configuration (stock, and the shipped docker/rabbitmq config), N/10 then N
 * messages are seeded due now and each run once by a daemon that reschedules it to its own
 * interval (1 min – 1 day), then rest; the node's RSS, `erlang:memory(total)`, memory breakdown
 * and data dir are read at empty, N/10 and N. The growth from N/10 to N, per million, is what
 * each further million costs. BullMQ's delayed jobs on the local Redis in the same run (bench/memory's
 * measurement: N/2 → N). Needs this host's `rabbitmq-server` (3.10) and root (the node's dirs
 * belong to user rabbitmq).
 */
export const residentBenchmark: Benchmark = {
  name: 'resident',
  description: 'broker memory per further million resident on the shipped defaults (each message rescheduled once to its own interval, 1 min – 1 day), private stock and shipped-config nodes, node-wide, vs BullMQ',
  async run(options: BenchOptions): Promise<BenchReport> {
    const n = options.n ?? (options.quick ? DEFAULTS.quick : DEFAULTS.full);
    const steps = [Math.max(1, Math.floor(n / 10)), n];
    const loadStart = loadAverage();
    const shipped = await shippedBrokerConfig(REPO_ROOT);
    const runs: NodeRun[] = [];
    for (const kind of KINDS) {
      const say = (line: string) => options.progress(`resident ${kind.name}: ${line}`);
      say('starting a private node');
      let node;
      try {
        node = await startPrivateNode(kind.name === 'shipped' ? { lines: shipped.lines, user: shipped.user, password: shipped.password, advancedConfig: shipped.advancedConfig } : {});
      } catch (err) {
        runs.push({ kind, error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      // The child's broker readings (bench/lib/ctl.ts) go to this node, never the shared one.
      const saved = { node: process.env.ORBIT_BENCH_RABBITMQ_NODE, root: process.env.ORBIT_BENCH_RABBITMQ4_ROOT, testRoot: process.env.ORBIT_TEST_RABBITMQ4_ROOT };
      process.env.ORBIT_BENCH_RABBITMQ_NODE = node.node;
      delete process.env.ORBIT_BENCH_RABBITMQ4_ROOT;
      delete process.env.ORBIT_TEST_RABBITMQ4_ROOT;
      try {
        const job: ResidentJob = { label: `resident ${kind.name}`, amqpUrl: node.amqpUrl, steps, repoRoot: REPO_ROOT };
        const result = options.inProcess ? await runResident(job, say) : await runInChild<ResidentJob, ResidentResult>(RUN_ONE_SCRIPT, job);
        runs.push({ kind, result });
      } catch (err) {
        say(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
        runs.push({ kind, error: err instanceof Error ? err.message.split('\n')[0]! : String(err) });
      } finally {
        for (const [key, value] of [['ORBIT_BENCH_RABBITMQ_NODE', saved.node], ['ORBIT_BENCH_RABBITMQ4_ROOT', saved.root], ['ORBIT_TEST_RABBITMQ4_ROOT', saved.testRoot]] as const) {
          if (value === undefined) delete process.env[key];
          else process.env[key] = value;
        }
        say('stopping the node');
        await node.stop();
      }
    }
    let bull: StoreResult | undefined;
    const notes: string[] = [];
    if (await redisAvailable(options.redisUrl)) {
      if (n > BULLMQ_MAX_N) notes.push(`bullmq at N = ${formatInt(BULLMQ_MAX_N)} (BULLMQ_MAX_N: Redis keeps every delayed job in RAM; its cost per job is linear)`);
      bull = await measureBullmq(options, Math.min(n, BULLMQ_MAX_N));
    } else notes.push(`bullmq skipped: no Redis at ${options.redisUrl}`);
    const loadEnd = loadAverage();

    const targets: TargetResult[] = runs
      .filter((r) => r.result)
      .map((r) => {
        const [, a, b] = r.result!.readings;
        const erlang = perMillion(a!, b!, (x) => x.erlang);
        const rss = perMillion(a!, b!, (x) => x.rss);
        return {
          what: `broker memory per further million resident, ${r.kind.name} node, ${formatInt(a!.resident)} → ${formatInt(b!.resident)}, erlang:memory and RSS ≤`,
          target: `${TARGET_MB_PER_MILLION} MB`,
          measured: `${formatFixed(erlang, 1)} MB / ${formatFixed(rss, 1)} MB`,
          met: erlang <= TARGET_MB_PER_MILLION && rss <= TARGET_MB_PER_MILLION,
        };
      });
    const ok = runs.filter((r) => r.result);
    const text = [
      `resident — ${this.description}`,
      `N = ${formatInt(n)}: readings at empty, ${formatInt(steps[0]!)} and ${formatInt(n)} resident; config/default.json as shipped (lane fast: quorum delay ladder at 2 %, bundles of up to 200); ${'80'}-byte bodies seeded due now, each run once and rescheduled to its own interval (uniform 1 min – 1 day by a hash of its id); readings after a GC of every broker process, median of 3`,
      ...KINDS.map((k) => `${k.name}: ${k.describe}`),
      describeLoad(loadStart, loadEnd),
      ...notes,
      '',
      renderTable(
        [
          { header: 'node' },
          { header: 'resident', align: 'right' },
          { header: 'AMQP msgs', align: 'right' },
          { header: 'RSS MB', align: 'right' },
          { header: 'erlang MB', align: 'right' },
          { header: 'binary MB', align: 'right' },
          { header: 'quorum_ets MB', align: 'right' },
          { header: 'quorum procs MB', align: 'right' },
          { header: 'disk MB', align: 'right' },
          { header: 'seed s', align: 'right' },
          { header: 'run s', align: 'right' },
        ],
        ok.flatMap((r) =>
          r.result!.readings.map((x) => [
            r.kind.name,
            formatInt(x.resident),
            formatInt(x.amqpMessages),
            formatFixed(x.rss / MB, 0),
            formatFixed(x.erlang / MB, 0),
            formatFixed(x.parts.binary / MB, 0),
            formatFixed(x.parts.quorum_ets / MB, 0),
            formatFixed(x.parts.quorum_queue_procs / MB, 0),
            formatFixed(x.disk / MB, 0),
            formatFixed(x.seedSeconds, 1),
            formatFixed(x.runSeconds, 1),
          ]),
        ),
      ),
      '',
      'MB per million resident (empty → N: the fixed costs included | N/10 → N: each further million):',
      renderTable(
        [{ header: 'store' }, { header: 'RSS', align: 'right' }, { header: 'erlang:memory', align: 'right' }, { header: 'binary', align: 'right' }, { header: 'quorum_ets', align: 'right' }, { header: 'disk', align: 'right' }],
        [
          ...ok.map((r) => {
            const [e, a, b] = r.result!.readings;
            const both = (pick: (x: ResidentReading) => number) => `${formatFixed(perMillion(e!, b!, pick), 1)} | ${formatFixed(perMillion(a!, b!, pick), 1)}`;
            return [`orbit, ${r.kind.name} node`, both((x) => x.rss), both((x) => x.erlang), both((x) => x.parts.binary), both((x) => x.parts.quorum_ets), both((x) => x.disk)];
          }),
          ...(bull ? [['bullmq (Redis used_memory; N/2 → N)', `${formatFixed(bull.total.ram, 1)} | ${formatFixed(bull.marginal.ram, 1)}`, '—', '—', '—', '—']] : []),
        ],
      ),
      ...ok.filter((r) => r.result!.extraRuns > 0).map((r) => `${r.kind.name}: ${formatInt(r.result!.extraRuns)} runs beyond one per message (short intervals that came due again)`),
      ...runs.filter((r) => r.error).map((r) => `${r.kind.name}: FAILED: ${r.error}`),
      '',
      ...targets.map(targetLine),
    ];
    return { benchmark: this.name, text, data: { benchmark: this.name, params: { n, steps }, load: { start: loadStart, end: loadEnd }, runs, bullmq: bull, targets, notes } };
  },
};
