import { serveJob } from '../lib/isolate';
import { runBundleLateness, type BundleLatenessJob, type BundleLatenessResult } from './lateness';
import { runMemory, type MemoryJob, type MemoryResult } from './memory';
import { runReschedule, type RescheduleJob, type RescheduleResult } from './reschedule';
import { runSeeding, type SeedingJob, type SeedingResult } from './seeding';

/** One run of one part of the bundles benchmark (plain data: it crosses to a child process). */
export type BundlesJob = RescheduleJob | MemoryJob | SeedingJob | BundleLatenessJob;

export interface JobResults {
  reschedule: RescheduleResult;
  memory: MemoryResult;
  seeding: SeedingResult;
  lateness: BundleLatenessResult;
}

export async function runBundlesJob(job: BundlesJob, progress: (line: string) => void): Promise<JobResults[BundlesJob['kind']]> {
  const say = (line: string) => progress(`${job.label}: ${line}`);
  switch (job.kind) {
    case 'reschedule':
      return runReschedule(job, say);
    case 'memory':
      return runMemory(job, say);
    case 'seeding':
      return runSeeding(job, say);
    case 'lateness':
      return runBundleLateness(job, say);
  }
}

// Run as a script (`fork`ed by the harness): one job, one answer, exit.
if (require.main === module) {
  serveJob<BundlesJob, unknown>((job) => runBundlesJob(job, (line) => process.stderr.write(`[bench] ${line}\n`)));
}
