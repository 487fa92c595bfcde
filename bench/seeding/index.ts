import type { QueueType } from '../../src/config/types';
import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { runInChild } from '../lib/isolate';
import { describeLoad, loadAverage } from '../lib/load';
import { alternatingOrder, median, round } from '../lib/stats';
import { formatFixed, formatInt, renderTable } from '../lib/table';
import { BASELINE, seedContenders, type SeedContender, type SeedParams, type SeedTiming } from './contenders';
import { runSeedOnce, type SeedJob } from './run-one';

const RUN_ONE_SCRIPT = require.resolve('./run-one');

export const DEFAULTS = { quick: { n: 20_000, rounds: 1 }, full: { n: 100_000, rounds: 3 }, window: 2000, bytes: 80, delayMs: 3_600_000 } as const;
export const TARGET_RATIO = 0.9;

interface SeedRound {
  readonly queueType: QueueType;
  readonly round: number;
  readonly contender: string;
  readonly n: number;
  readonly seconds: number;
  readonly msgsPerSec: number;
  readonly cpuMicrosPerMsg: number;
}

/**
 * Seeding rate: N generated messages (80-byte JSON bodies, ids gen-<n>) published one hour
 * ahead with publisher confirms and at most 2,000 unconfirmed, by orbit's seeder and by a
 * plain amqplib loop doing the same on the same exchange. Each run in a fresh node process
 * and a fresh namespace, alternating, once per `delay.queueType`; median per contender.
 */
export const seedingBenchmark: Benchmark = {
  name: 'seeding',
  description: 'N messages published 1 h ahead with confirms (window 2,000): orbit seed vs a raw amqplib publisher loop',
  async run(options: BenchOptions): Promise<BenchReport> {
    const mode = options.quick ? DEFAULTS.quick : DEFAULTS.full;
    const n = options.n ?? mode.n;
    const rounds = options.rounds ?? mode.rounds;
    const wanted = options.contenders.filter((c) => seedContenders.some((s) => s.name === c));
    const selected: SeedContender[] = wanted.length > 0 ? seedContenders.filter((c) => wanted.includes(c.name)) : [...seedContenders];
    const order = alternatingOrder(selected, rounds);
    const loadStart = loadAverage();
    const results: SeedRound[] = [];
    for (const queueType of options.queueTypes) {
      const params: SeedParams = { n, bytes: DEFAULTS.bytes, window: DEFAULTS.window, delayMs: DEFAULTS.delayMs, queueType, amqpUrl: options.amqpUrl };
      for (const [r, contenders] of order.entries()) {
        for (const c of contenders) {
          const label = `seeding ${queueType} round ${r + 1}/${rounds} ${c.name}`;
          const job: SeedJob = { contender: c.name, label, params };
          const t = options.inProcess ? await runSeedOnce(job, options.progress) : await runInChild<SeedJob, SeedTiming>(RUN_ONE_SCRIPT, job);
          const res: SeedRound = {
            queueType,
            round: r + 1,
            contender: c.name,
            n,
            seconds: round(t.seconds, 3),
            msgsPerSec: round(n / t.seconds, 0),
            cpuMicrosPerMsg: round((t.clientCpuSeconds * 1e6) / n, 1),
          };
          results.push(res);
          options.progress(`${label}: ${formatFixed(res.seconds, 2)} s, ${formatInt(res.msgsPerSec)} msgs/s, client CPU ${formatFixed(res.cpuMicrosPerMsg, 0)} µs/msg`);
        }
      }
    }
    const loadEnd = loadAverage();

    const summary = options.queueTypes.flatMap((queueType) => {
      const group = results.filter((r) => r.queueType === queueType);
      const rate = (name: string) => {
        const mine = group.filter((r) => r.contender === name);
        return mine.length > 0 ? n / median(mine.map((r) => r.seconds)) : undefined;
      };
      const base = rate(BASELINE);
      return selected.map((c) => {
        const mine = group.filter((r) => r.contender === c.name);
        const msgsPerSec = rate(c.name)!;
        return {
          queueType,
          contender: c.name,
          seconds: round(median(mine.map((r) => r.seconds)), 3),
          msgsPerSec: round(msgsPerSec, 0),
          ratio: base === undefined ? undefined : round(msgsPerSec / base, 3),
          cpuMicrosPerMsg: round(median(mine.map((r) => r.cpuMicrosPerMsg)), 1),
        };
      });
    });
    const targets: TargetResult[] = summary
      .filter((s) => s.contender === 'orbit-seed')
      .map((s) => ({
        what: `seeding (${s.queueType}) orbit seed ≥`,
        target: `${TARGET_RATIO} × ${BASELINE}`,
        measured: s.ratio === undefined ? 'baseline not run' : `${formatFixed(s.ratio, 2)}×`,
        met: s.ratio === undefined ? undefined : s.ratio >= TARGET_RATIO,
      }));

    const text = [
      `seeding — ${this.description}`,
      `N = ${formatInt(n)}, ${DEFAULTS.bytes}-byte bodies, window ${DEFAULTS.window}, delay 1 h (one exchange, one routing key), delay.queueType ${options.queueTypes.join(' and ')}, ${rounds} round(s), ${options.inProcess ? 'in this process' : 'each run in a fresh node process'}`,
      describeLoad(loadStart, loadEnd),
      ...selected.map((c) => `  ${c.name}: ${c.summary}`),
      '',
      renderTable(
        [{ header: 'queueType' }, { header: 'round', align: 'right' }, { header: 'contender' }, { header: 'seconds', align: 'right' }, { header: 'msgs/s', align: 'right' }, { header: 'client CPU µs/msg', align: 'right' }],
        results.map((r) => [r.queueType, String(r.round), r.contender, formatFixed(r.seconds, 2), formatInt(r.msgsPerSec), formatFixed(r.cpuMicrosPerMsg, 0)]),
      ),
      '',
      `median over ${rounds} round(s):`,
      renderTable(
        [{ header: 'queueType' }, { header: 'contender' }, { header: 'seconds', align: 'right' }, { header: 'msgs/s', align: 'right' }, { header: `× ${BASELINE}`, align: 'right' }, { header: 'client CPU µs/msg', align: 'right' }],
        summary.map((s) => [s.queueType, s.contender, formatFixed(s.seconds, 2), formatInt(s.msgsPerSec), s.ratio === undefined ? '—' : formatFixed(s.ratio, 2), formatFixed(s.cpuMicrosPerMsg, 0)]),
      ),
      '',
      ...targets.map(targetLine),
    ];
    return { benchmark: this.name, text, data: { benchmark: this.name, params: { n, rounds, ...DEFAULTS }, load: { start: loadStart, end: loadEnd }, rounds: results, summary, targets } };
  },
};
