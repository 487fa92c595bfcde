import { join } from 'node:path';
import { loadConfig } from '../../src/config/load';
import { Daemon } from '../../src/daemon';
import { Scheduler } from '../../src/publish/scheduler';
import { defaultSeedWindow } from '../../src/seed/default-window';
import { seed } from '../../src/seed/seeder';
import { generated } from '../../src/seed/sources';
import { reschedule } from '../../src/worker/handler-types';
import { randomNamespace } from '../lib/broker';
import { brokerDisk, queuesUnder, settledBrokerMemory, type BreakdownPart } from '../lib/broker-stats';
import { unitHash } from '../lib/hash';
import { atMost } from '../lib/stall';
import { nowSeconds } from '../lib/stats';

/** The lane of config/default.json the messages go through. */
export const LANE = 'fast';
export const BODY_BYTES = 80;
/** Each message's own interval, uniform over 1 min – 1 day by a hash of its id: the user's workload. */
export const MIN_INTERVAL_MS = 60_000;
export const MAX_INTERVAL_MS = 86_400_000;

export function intervalOf(id: string): number {
  return MIN_INTERVAL_MS + Math.floor(unitHash(`r-${id}`) * (MAX_INTERVAL_MS - MIN_INTERVAL_MS));
}

/** One node's run (plain data: it crosses to a child process, whose ORBIT_BENCH_RABBITMQ_NODE names the node). */
export interface ResidentJob {
  readonly label: string;
  readonly amqpUrl: string;
  /** Messages resident at each reading after the empty one, rising (e.g. 100,000 then 1,000,000). */
  readonly steps: readonly number[];
  readonly repoRoot: string;
}

export interface ResidentReading {
  /** Logical messages resident. */
  readonly resident: number;
  /** AMQP messages the broker holds in the namespace (bundles count once). */
  readonly amqpMessages: number;
  /** The node's RSS as RabbitMQ reports it ("Total memory used"), bytes. */
  readonly rss: number;
  /** `erlang:memory(total)`, bytes. */
  readonly erlang: number;
  readonly parts: Readonly<Record<BreakdownPart, number>>;
  /** `du -sb` of the node's data directory, bytes. */
  readonly disk: number;
  /** Seconds to seed this step's messages, and to run each once (reschedule to its own interval). */
  readonly seedSeconds: number;
  readonly runSeconds: number;
}

export interface ResidentResult {
  readonly readings: readonly ResidentReading[];
  /** Runs beyond one per message (a message with a short interval that came due again while the daemon ran). */
  readonly extraRuns: number;
}

/**
 * The issue's scenario, on the shipped defaults (config/default.json: quorum delay ladder at
 * 2 %, bundles of up to 200): for each step, the step's new messages (80-byte bodies) are
 * seeded due now into lane `fast` (`orbit seed`'s path and default window), then a daemon
 * runs each once, rescheduling it to its own interval (1 min – 1 day), and stops once every
 * new message ran and its replacement was confirmed; then the node's memory (after a GC of
 * every process, median of 3) and disk are read with nothing moving. A message due again
 * meanwhile (an interval of minutes) is run and rescheduled again: still resident.
 */
export async function runResident(job: ResidentJob, progress: (line: string) => void): Promise<ResidentResult> {
  const namespace = randomNamespace('bench-resident');
  const config = loadConfig({
    configFile: join(job.repoRoot, 'config', 'default.json'),
    env: {},
    overrides: { namespace, 'amqp.url': job.amqpUrl, 'log.level': 'silent', 'http.port': '0', 'amqp.management.check': 'false' },
  });
  const lane = config.lanes.find((l) => l.name === LANE)!;
  const readings: ResidentReading[] = [];
  const read = async (resident: number, seedSeconds: number, runSeconds: number): Promise<ResidentReading> => {
    const memory = await settledBrokerMemory();
    const { bytes } = await brokerDisk();
    const amqpMessages = resident === 0 ? 0 : (await queuesUnder(`${namespace}.`)).messages;
    return { resident, amqpMessages, rss: memory.totalBytes, erlang: memory.erlangBytes, parts: memory.parts, disk: bytes, seedSeconds, runSeconds };
  };
  readings.push(await read(0, 0, 0));
  let firstRuns = 0;
  let runs = 0;
  let failure: Error | undefined;
  let from = 0;
  for (const to of job.steps) {
    // 1. Seed the new messages, due now.
    progress(`seeding messages ${(from + 1).toLocaleString('en-US')}–${to.toLocaleString('en-US')} due now`);
    const s0 = nowSeconds();
    const scheduler = new Scheduler({ config });
    try {
      const result = await seed(generated(to, BODY_BYTES, from), scheduler, { lane: LANE, window: defaultSeedWindow(lane.bundle.max, config.delay.tolerance) }, (_line, err) => {
        throw err;
      });
      if (result.failure !== undefined) throw result.failure instanceof Error ? result.failure : new Error(String(result.failure));
      if (result.confirmed !== to - from) throw new Error(`seeded ${result.confirmed} of ${to - from}`);
    } finally {
      await atMost(scheduler.close(), 30_000);
    }
    const seedSeconds = nowSeconds() - s0;

    // 2. Run each once: rescheduled to its own interval.
    progress(`running ${(to - from).toLocaleString('en-US')} messages once, each rescheduled to its own interval (1 min – 1 day)`);
    const r0 = nowSeconds();
    const daemon = new Daemon({
      config,
      handlers: {
        [LANE]: (msg) => {
          runs++;
          if (msg.runs === 0) firstRuns++;
          return reschedule({ delay: intervalOf(msg.id) });
        },
        slow: () => undefined,
      },
      observer: {
        messageSettled: (_lane, how) => {
          if (how !== 'rescheduled') failure ??= new Error(`a message was settled as ${how}, expected rescheduled`);
        },
      },
    });
    await daemon.start();
    let last = firstRuns;
    let quiet = 0;
    while (firstRuns < to) {
      await new Promise((r) => setTimeout(r, 1000));
      if (failure) throw failure;
      quiet = firstRuns === last ? quiet + 1 : 0;
      last = firstRuns;
      if (quiet >= 60) throw new Error(`no first run for 60 s (${firstRuns} of ${to})`);
    }
    // Stopping sends the bundles still lingering and waits for their confirms: every run settles.
    await daemon.stop();
    if (failure) throw failure;
    const runSeconds = nowSeconds() - r0;
    const reading = await read(to, seedSeconds, runSeconds);
    progress(
      `${to.toLocaleString('en-US')} resident in ${reading.amqpMessages.toLocaleString('en-US')} AMQP messages: RSS ${(reading.rss / 1e6).toFixed(0)} MB, erlang ${(reading.erlang / 1e6).toFixed(0)} MB, disk ${(reading.disk / 1e6).toFixed(0)} MB (seeded in ${seedSeconds.toFixed(1)} s, run in ${runSeconds.toFixed(1)} s)`,
    );
    readings.push(reading);
    from = to;
  }
  return { readings, extraRuns: runs - firstRuns };
}
