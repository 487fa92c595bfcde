import type { QueueType } from '../../src/config/types';
import { Daemon } from '../../src/daemon';
import { owe } from '../lib/cleanup';
import { serveJob } from '../lib/isolate';
import { timeDaemonLoop } from '../reschedule/orbit';
import { stageConfig } from '../reschedule/rabbit-setup';

export interface RssJob {
  readonly label: string;
  /** The namespace the parent prepared: topology declared, N messages in the lane queue. */
  readonly namespace: string;
  readonly n: number;
  readonly concurrency: number;
  readonly delayMs: number;
  readonly queueType: QueueType;
  readonly amqpUrl: string;
  readonly sampleMs: number;
}

export interface RssResult {
  /** RSS right after `start()` resolved (connections, topology, consumer), MB. */
  readonly rssStartMb: number;
  readonly rssPeakMb: number;
  readonly rssEndMb: number;
  /** Median of the samples taken during the loop. */
  readonly rssMedianMb: number;
  readonly heapPeakMb: number;
  readonly samples: number;
  readonly loopSeconds: number;
  readonly cpuSeconds: number;
}

/**
 * A daemon alone in this process (the parent preloaded the lane), concurrency 1,000, handler
 * rescheduling every message one hour ahead. RSS sampled every `sampleMs`; CPU time (user +
 * system) of this process from the first handler start to the N-th settlement.
 */
export async function runRss(job: RssJob, progress: (line: string) => void): Promise<RssResult> {
  const config = stageConfig(job.namespace, job);
  const mb = (b: number) => b / 2 ** 20;
  const samples: number[] = [];
  let heapPeak = 0;
  let daemon: Daemon | undefined;
  let rssStart = 0;
  const stop = owe(async () => daemon?.stop());
  const sample = () => {
    const m = process.memoryUsage();
    samples.push(m.rss);
    if (m.heapUsed > heapPeak) heapPeak = m.heapUsed;
  };
  const sampler = setInterval(sample, job.sampleMs);
  try {
    const timing = await timeDaemonLoop(
      config,
      job.n,
      job.delayMs,
      (d) => (daemon = d),
      () => {
        rssStart = process.memoryUsage().rss;
        progress(`daemon started (RSS ${mb(rssStart).toFixed(0)} MB)`);
      },
    );
    sample();
    const rssEnd = samples[samples.length - 1]!;
    const sorted = [...samples].sort((a, b) => a - b);
    return {
      rssStartMb: mb(rssStart),
      rssPeakMb: mb(sorted[sorted.length - 1]!),
      rssEndMb: mb(rssEnd),
      rssMedianMb: mb(sorted[sorted.length >> 1]!),
      heapPeakMb: mb(heapPeak),
      samples: samples.length,
      loopSeconds: timing.loopSeconds,
      cpuSeconds: timing.clientCpuSeconds,
    };
  } finally {
    clearInterval(sampler);
    await stop();
  }
}

if (require.main === module) {
  serveJob<RssJob, RssResult>((job) => runRss(job, (line) => process.stderr.write(`[bench] ${job.label}: ${line}\n`)));
}
