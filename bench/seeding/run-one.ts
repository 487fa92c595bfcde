import { serveJob } from '../lib/isolate';
import { seedContenders, type SeedParams, type SeedTiming } from './contenders';

export interface SeedJob {
  readonly contender: string;
  readonly label: string;
  readonly params: SeedParams;
}

export async function runSeedOnce(job: SeedJob, progress: (line: string) => void): Promise<SeedTiming> {
  const contender = seedContenders.find((c) => c.name === job.contender);
  if (!contender) throw new Error(`unknown seeding contender "${job.contender}"`);
  return contender.run(job.params, (line) => progress(`${job.label}: ${line}`));
}

if (require.main === module) {
  serveJob<SeedJob, SeedTiming>((job) => runSeedOnce(job, (line) => process.stderr.write(`[bench] ${line}\n`)));
}
