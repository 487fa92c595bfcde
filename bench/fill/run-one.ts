import { serveJob } from '../lib/isolate';
import { runFill, type FillJob, type FillResult } from './fill';

// Run as a script (`fork`ed by the harness): one fill run, one answer, exit.
if (require.main === module) {
  serveJob<FillJob, FillResult>((job) => runFill(job, (line) => process.stderr.write(`[bench] ${job.label}: ${line}\n`)));
}
