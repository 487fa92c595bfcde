import { targetLine, type Benchmark, type BenchOptions, type BenchReport, type TargetResult } from '../lib/benchmark';
import { runInChild } from '../lib/isolate';
import { describeLoad, loadAverage } from '../lib/load';
import { round } from '../lib/stats';
import { formatFixed, formatInt, renderTable } from '../lib/table';
import { prepareRabbitStage } from '../reschedule/rabbit-setup';
import { runRss, type RssJob, type RssResult } from './run-one';

const RUN_ONE_SCRIPT = require.resolve('./run-one');

export const DEFAULTS = { quick: 20_000, full: 100_000, concurrency: 1000, sampleMs: 100, delayMs: 3_600_000 } as const;
/** Issue 5: the daemon's RSS stays under this. */
export const TARGET_RSS_MB = 200;

interface Row extends RssResult {
  readonly queueType: string;
  readonly n: number;
  readonly msgsPerSec: number;
  readonly cpuSecondsPer1000: number;
}

/**
 * Daemon RSS and CPU: N messages wait in the lane; a daemon alone in a fresh node process
 * (lane concurrency 1,000, handler rescheduling each one hour ahead) works through them. Its
 * RSS is sampled every 100 ms; its CPU time (user + system) from the first handler start to
 * the N-th settlement gives CPU seconds per 1,000 messages. Preloading happens in the parent.
 */
export const rssBenchmark: Benchmark = {
  name: 'rss',
  description: 'daemon RSS and CPU seconds per 1,000 messages at concurrency 1,000 (reschedule 1 h)',
  async run(options: BenchOptions): Promise<BenchReport> {
    const n = options.n ?? (options.quick ? DEFAULTS.quick : DEFAULTS.full);
    const loadStart = loadAverage();
    const rows: Row[] = [];
    for (const queueType of options.queueTypes) {
      const label = `rss ${queueType}`;
      options.progress(`${label}: preloading ${formatInt(n)} messages`);
      const stage = await prepareRabbitStage({ n, concurrency: DEFAULTS.concurrency, delayMs: DEFAULTS.delayMs, amqpUrl: options.amqpUrl, queueType, progress: options.progress }, 'rss');
      try {
        const job: RssJob = { label, namespace: stage.namespace, n, concurrency: DEFAULTS.concurrency, delayMs: DEFAULTS.delayMs, queueType, amqpUrl: options.amqpUrl, sampleMs: DEFAULTS.sampleMs };
        const r = options.inProcess ? await runRss(job, options.progress) : await runInChild<RssJob, RssResult>(RUN_ONE_SCRIPT, job);
        const problems = await stage.verify();
        if (problems.length > 0) throw new Error(`rss ${queueType} run is not valid: ${problems.join('; ')}`);
        rows.push({ ...r, queueType, n, msgsPerSec: round(n / r.loopSeconds, 0), cpuSecondsPer1000: round(r.cpuSeconds / (n / 1000), 4) });
        options.progress(`${label}: RSS peak ${formatFixed(r.rssPeakMb, 0)} MB, ${formatFixed(r.cpuSeconds / (n / 1000), 3)} CPU s per 1,000`);
      } finally {
        await stage.cleanup();
      }
    }
    const loadEnd = loadAverage();
    const targets: TargetResult[] = rows.map((r) => ({
      what: `daemon RSS (${r.queueType}) ≤`,
      target: `${TARGET_RSS_MB} MB`,
      measured: `peak ${formatFixed(r.rssPeakMb, 0)} MB`,
      met: r.rssPeakMb <= TARGET_RSS_MB,
    }));
    const text = [
      `rss — ${this.description}`,
      `N = ${formatInt(n)}, lane concurrency ${DEFAULTS.concurrency}, RSS sampled every ${DEFAULTS.sampleMs} ms${options.inProcess ? ', in this process (figures include the harness)' : ', daemon alone in a fresh node process'}`,
      describeLoad(loadStart, loadEnd),
      '',
      renderTable(
        [
          { header: 'queueType' },
          { header: 'N', align: 'right' },
          { header: 'msgs/s', align: 'right' },
          { header: 'RSS start MB', align: 'right' },
          { header: 'median MB', align: 'right' },
          { header: 'peak MB', align: 'right' },
          { header: 'end MB', align: 'right' },
          { header: 'heap peak MB', align: 'right' },
          { header: 'CPU s / 1,000 msgs', align: 'right' },
        ],
        rows.map((r) => [
          r.queueType,
          formatInt(r.n),
          formatInt(r.msgsPerSec),
          formatFixed(r.rssStartMb, 0),
          formatFixed(r.rssMedianMb, 0),
          formatFixed(r.rssPeakMb, 0),
          formatFixed(r.rssEndMb, 0),
          formatFixed(r.heapPeakMb, 0),
          formatFixed(r.cpuSecondsPer1000, 3),
        ]),
      ),
      '',
      ...targets.map(targetLine),
    ];
    return { benchmark: this.name, text, data: { benchmark: this.name, params: { n, ...DEFAULTS }, load: { start: loadStart, end: loadEnd }, rows, targets } };
  },
};
