import { Queue, Worker, type Job } from 'bullmq';
import { bullConnection, type BenchJobData } from '../lib/bullmq';
import { owe } from '../lib/cleanup';
import { deleteKeys, randomPrefix, redisConnection } from '../lib/redis';
import { LoopClock, StallWatch, type LoopTiming, type PreparedContender, type RescheduleContender, type RescheduleParams } from './contender';
import { benchBody } from './rabbit-setup';

const QUEUE = 'bench';
/** Jobs per addBulk call while preloading (one MULTI each). */
const PRELOAD_BATCH = 1000;

/**
 * BullMQ on the local Redis: N jobs wait in a queue; a Worker with the same concurrency
 * processes them, and its processor re-adds each job one hour ahead
 * (`queue.add(name, data, { delay: 3_600_000 })`, a new job id, as BullMQ will not re-add an
 * id that still exists) and returns. BullMQ then moves the original to completed, which is
 * its ack; `removeOnComplete` deletes it, so Redis holds only the delayed replacements, as the
 * broker does. The loop runs from the first processor call to the N-th `completed` event:
 * the replacement is in Redis and the original is gone.
 */
export const bullmqContender: RescheduleContender = {
  name: 'bullmq',
  summary: 'BullMQ Worker; processor re-adds the job with { delay: 1 h }; removeOnComplete (Redis)',
  async prepare(params: RescheduleParams): Promise<PreparedContender> {
    if (!params.redisUrl) throw new Error('bullmq needs a Redis URL');
    const prefix = randomPrefix();
    const connection = bullConnection(params.redisUrl);
    const queue = new Queue<BenchJobData>(QUEUE, { connection, prefix });
    let worker: Worker<BenchJobData> | undefined;
    // Closed before the keys are deleted, also on Ctrl-C, so nothing re-creates them.
    const closeAll = owe(async () => {
      await worker?.close(true).catch(() => undefined);
      await queue.close().catch(() => undefined);
    });
    const deleteAll = owe(async () => {
      const redis = redisConnection(params.redisUrl!);
      try {
        await deleteKeys(redis, prefix);
      } finally {
        redis.disconnect();
      }
    });
    const cleanup = async () => {
      await closeAll();
      await deleteAll();
    };

    try {
      await queue.waitUntilReady();
      for (let i = 0; i < params.n; i += PRELOAD_BATCH) {
        const jobs = [];
        for (let j = i; j < Math.min(params.n, i + PRELOAD_BATCH); j++) {
          jobs.push({ name: 'job', data: { id: `job-${j}`, runs: 0, body: benchBody(j).toString() }, opts: { removeOnComplete: true } });
        }
        await queue.addBulk(jobs);
      }
      const waiting = await queue.getWaitingCount();
      if (waiting !== params.n) throw new Error(`BullMQ queue holds ${waiting} waiting jobs, expected ${params.n}`);
    } catch (err) {
      await cleanup().catch(() => undefined);
      throw err;
    }

    return {
      cleanup,
      async verify() {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
        const problems: string[] = [];
        if (counts.delayed !== params.n) problems.push(`${counts.delayed} delayed jobs, expected ${params.n}`);
        for (const state of ['waiting', 'active', 'completed', 'failed'] as const) {
          if (counts[state] !== 0) problems.push(`${counts[state]} ${state} jobs, expected 0`);
        }
        return problems;
      },
      async run() {
        const clock = new LoopClock(params.n);
        const timing = await new Promise<LoopTiming>((resolve, reject) => {
          const stall = new StallWatch(() => clock.settled, reject);
          const fail = (err: Error) => {
            stall.stop();
            reject(err);
          };
          const processor = async (job: Job<BenchJobData>): Promise<void> => {
            clock.begin();
            const { id, runs, body } = job.data;
            await queue.add(job.name, { id, runs: runs + 1, body }, { delay: params.delayMs, removeOnComplete: true });
          };
          worker = new Worker<BenchJobData>(QUEUE, processor, { connection, prefix, concurrency: params.concurrency, autorun: false });
          worker.on('completed', () => {
            const timing = clock.settle();
            if (timing) {
              stall.stop();
              resolve(timing);
            }
          });
          worker.on('failed', (_job, err) => fail(new Error(`a job failed: ${err.message}`)));
          worker.on('error', fail);
          stall.start();
          void worker.run().catch(fail);
        });
        // Outside the timed loop: stop the worker.
        await worker!.close();
        return timing;
      },
    };
  },
};
