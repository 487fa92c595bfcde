import { serveJob } from '../lib/isolate';
import { runResident, type ResidentJob, type ResidentResult } from './resident';

// Run as a script (`fork`ed by the harness): one node's run, one answer, exit.
if (require.main === module) {
  serveJob<ResidentJob, ResidentResult>((job) => runResident(job, (line) => process.stderr.write(`[bench] ${job.label}: ${line}\n`)));
}
