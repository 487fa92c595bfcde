import { serveJob } from '../lib/isolate';
import type { LoopTiming, RescheduleParams } from './contender';
import { contenders } from './contenders';

/** What the harness hands to one run (in a child process: plain data, no functions). */
export interface RunJob {
  readonly contender: string;
  readonly label: string;
  readonly params: Omit<RescheduleParams, 'progress'>;
}

/** Prepares, runs, verifies and cleans up one contender once. */
export async function runOnce(job: RunJob, progress: (line: string) => void): Promise<LoopTiming> {
  const contender = contenders.find((c) => c.name === job.contender);
  if (!contender) throw new Error(`unknown contender "${job.contender}"`);
  progress(`${job.label}: preloading ${job.params.n.toLocaleString('en-US')} messages`);
  const prepared = await contender.prepare({ ...job.params, progress });
  try {
    progress(`${job.label}: running`);
    const timing = await prepared.run();
    const problems = await prepared.verify();
    if (problems.length > 0) throw new Error(`${job.contender} run is not valid: ${problems.join('; ')}`);
    return timing;
  } finally {
    await prepared.cleanup();
  }
}

// Run as a script (`fork`ed by the harness): one job, one answer, exit.
if (require.main === module) {
  serveJob<RunJob, LoopTiming>((job) => runOnce(job, (line) => process.stderr.write(`[bench] ${line}\n`)));
}
