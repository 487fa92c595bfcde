import { serveJob } from '../lib/isolate';
import { runSteady, type SteadyJob, type SteadyResult } from './loop';

// Run as a script (`fork`ed by the harness): one steady run, one answer, exit.
if (require.main === module) {
  serveJob<SteadyJob, SteadyResult>((job) => runSteady(job, (line) => process.stderr.write(`[bench] ${job.label}: ${line}\n`)));
}
