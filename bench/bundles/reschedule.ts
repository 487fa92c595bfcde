import type { QueueType } from '../../src/config/types';
import { Daemon } from '../../src/daemon';
import { routeDelay } from '../../src/delay/routing';
import { Scheduler } from '../../src/publish/scheduler';
import { buildTopology } from '../../src/topology/build';
import { names } from '../../src/naming/names';
import { benchConfig, deleteNamespace, queueDepth, randomNamespace, withChannel } from '../lib/broker';
import { owe } from '../lib/cleanup';
import { benchBody, LANE } from '../reschedule/rabbit-setup';
import { bullmqContender } from '../reschedule/bullmq';
import { timeDaemonLoop } from '../reschedule/orbit';
import { rawAmqplibContender } from '../reschedule/raw-amqplib';
import { drainLogical } from './logical';

/** One run of the reschedule loop: the raw amqplib baseline, or orbit with `bundle.max` = bundleMax. */
export interface RescheduleJob {
  readonly kind: 'reschedule';
  readonly label: string;
  /** `raw-amqplib`, `bullmq` (the peer, on the local Redis), or `orbit` with bundleMax (1 = bundles off). */
  readonly contender: 'raw-amqplib' | 'bullmq' | 'orbit';
  readonly bundleMax: number;
  readonly lingerMs: number;
  /** Logical messages preloaded and rescheduled in the timed loop. */
  readonly n: number;
  /** raw-amqplib: prefetch; orbit: the lane's concurrency (handler slots, in logical messages). */
  readonly concurrency: number;
  readonly delayMs: number;
  readonly queueType: QueueType;
  readonly amqpUrl: string;
  /** Redis for the bullmq contender. */
  readonly redisUrl?: string;
}

export interface RescheduleResult {
  readonly startupSeconds: number;
  readonly loopSeconds: number;
  readonly clientCpuSeconds: number;
  /** AMQP messages the lane held before the loop (N / bundle size). */
  readonly preloadedAmqp: number;
  /** What waited one hour ahead afterwards: AMQP messages and logical messages (decoded). */
  readonly heldAmqp: number;
  readonly heldLogical: number;
  /** The consumer's prefetch (AMQP messages). */
  readonly prefetch: number;
}

export async function runReschedule(job: RescheduleJob, progress: (line: string) => void): Promise<RescheduleResult> {
  return job.contender === 'orbit' ? runOrbit(job, progress) : runUnbundled(job, progress);
}

/**
 * The existing contenders of bench/reschedule, unchanged: raw amqplib (one AMQP message per
 * logical message) and BullMQ (one job per message, re-added delayed on the local Redis).
 */
async function runUnbundled(job: RescheduleJob, progress: (line: string) => void): Promise<RescheduleResult> {
  progress(`preloading ${job.n.toLocaleString('en-US')} messages`);
  const contender = job.contender === 'bullmq' ? bullmqContender : rawAmqplibContender;
  const prepared = await contender.prepare({ n: job.n, concurrency: job.concurrency, delayMs: job.delayMs, amqpUrl: job.amqpUrl, queueType: job.queueType, redisUrl: job.redisUrl, progress });
  try {
    progress('running');
    const timing = await prepared.run();
    // Nothing left to run and exactly N one hour ahead; unbundled, so AMQP messages (jobs) = logical messages.
    const problems = await prepared.verify();
    if (problems.length > 0) throw new Error(`${job.contender} run is not valid: ${problems.join('; ')}`);
    return { ...timing, preloadedAmqp: job.n, heldAmqp: job.n, heldLogical: job.n, prefetch: job.concurrency };
  } finally {
    await prepared.cleanup();
  }
}

/**
 * orbit with a bundled lane (`bundle: { max, linger }`): N logical messages are preloaded with
 * the Scheduler (so they arrive in the lane as bundles of `max`), then an in-process Daemon
 * whose handler reschedules each one hour ahead works through them; its outcomes are
 * re-bundled by the publisher and each delivery is acked once all of its messages are
 * confirmed. Timed from the first handler start to the N-th logical settlement. Afterwards
 * the hour-ahead level is drained and decoded: it must hold N logical messages, N distinct
 * ids, each with runs = 1.
 */
async function runOrbit(job: RescheduleJob, progress: (line: string) => void): Promise<RescheduleResult> {
  const namespace = randomNamespace(`bench-bndl-b${job.bundleMax}`);
  const config = benchConfig(namespace, job.amqpUrl, {
    delay: { queueType: job.queueType },
    lanes: [{ name: LANE, concurrency: job.concurrency, workAhead: false, bundle: { max: job.bundleMax, linger: `${job.lingerMs}ms` } }],
    shutdown: { timeout: '30s' },
  });
  const n = names(namespace);
  const topology = buildTopology(config);
  const laneQueue = n.lane(LANE);
  const holdQueue = routeDelay(job.delayMs, LANE, config.delay, n).exchange;
  const cleanup = owe(() => deleteNamespace(job.amqpUrl, namespace, { queues: topology.queues.map((q) => q.name), exchanges: topology.exchanges.map((e) => e.name) }));
  let daemon: Daemon | undefined;
  const stopDaemon = owe(async () => {
    await daemon?.stop().catch(() => undefined);
  });
  try {
    progress(`preloading ${job.n.toLocaleString('en-US')} messages (bundle.max ${job.bundleMax})`);
    // Enough publishes in flight to fill several bundles at once; each resolves on its bundle's confirm.
    const scheduler = new Scheduler({ config });
    try {
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < job.n; i = next++) await scheduler.publish(LANE, benchBody(i), { id: `job-${i}` });
      };
      await Promise.all(Array.from({ length: Math.min(job.n, Math.max(500, 4 * job.bundleMax)) }, worker));
    } finally {
      await scheduler.close();
    }
    const preloadedAmqp = await stableDepth(job.amqpUrl, laneQueue);

    progress(`running (${preloadedAmqp.toLocaleString('en-US')} AMQP messages in the lane)`);
    const timing = await timeDaemonLoop(config, job.n, job.delayMs, (d) => (daemon = d));
    // Outside the timed loop: stop consuming, let the last acks go out, close.
    await stopDaemon();

    const left = await queueDepth(job.amqpUrl, laneQueue);
    if (left !== 0) throw new Error(`${laneQueue} still holds ${left} AMQP messages, expected 0`);
    const held = await drainLogical(job.amqpUrl, [holdQueue], { trackIds: true, expectRuns: 1 });
    const problems: string[] = [];
    if (held.logical !== job.n) problems.push(`${holdQueue} holds ${held.logical} logical messages, expected ${job.n}`);
    if (held.distinctIds !== job.n) problems.push(`${held.distinctIds} distinct ids one hour ahead, expected ${job.n}`);
    if (held.wrongRuns > 0) problems.push(`${held.wrongRuns} logical messages with runs ≠ 1`);
    if (held.largest > job.bundleMax) problems.push(`a bundle of ${held.largest} > bundle.max ${job.bundleMax}`);
    if (problems.length > 0) throw new Error(`orbit bundle.max ${job.bundleMax} run is not valid: ${problems.join('; ')}`);
    const prefetch = job.bundleMax > 1 ? 2 * Math.ceil(job.concurrency / job.bundleMax) : job.concurrency;
    return { ...timing, preloadedAmqp, heldAmqp: held.amqp, heldLogical: held.logical, prefetch };
  } finally {
    await stopDaemon();
    await cleanup();
  }
}

/** The queue's depth once two readings 200 ms apart agree (and it is not empty). */
async function stableDepth(amqpUrl: string, queue: string, timeoutMs = 120_000): Promise<number> {
  return withChannel(amqpUrl, async (ch) => {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    for (;;) {
      const depth = (await ch.checkQueue(queue)).messageCount;
      if (depth > 0 && depth === last) return depth;
      if (Date.now() > deadline) throw new Error(`${queue} did not settle (last ${depth} messages)`);
      last = depth;
      await new Promise((r) => setTimeout(r, 200));
    }
  });
}
