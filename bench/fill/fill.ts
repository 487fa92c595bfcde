import type { QueueType } from '../../src/config/types';
import { Scheduler } from '../../src/publish/scheduler';
import { buildTopology } from '../../src/topology/build';
import { installAmqpCounters, snapshotCounts } from '../lib/amqp-counters';
import { deleteNamespace } from '../lib/broker';
import { brokerIsLocal } from '../lib/broker-stats';
import { owe } from '../lib/cleanup';
import { benchCtl } from '../lib/ctl';
import { paddedBody } from '../lib/floor';
import { unitHash } from '../lib/hash';
import { variantConfig, type VariantConfig } from '../lib/orbit-settings';
import { atMost, failOnStall } from '../lib/stall';
import { cpuSeconds, nowSeconds } from '../lib/stats';


export const LANE = 'fill';
/** A fill that confirms nothing for this long has failed. */
const STALL_MS = 60_000;
/** …and so has one still publishing after this long (the target is ≥ 5,000/s: 100,000 in 20 s). */
const LIMIT_MS = 180_000;

/** One fill run (plain data: it crosses to a child process). */
export interface FillJob {
  readonly kind: 'fill';
  readonly label: string;
  /** Chosen by the parent, which deletes it again if the run fails (a stuck publisher may re-declare queues). */
  readonly namespace: string;
  readonly queueType: QueueType;
  readonly tolerance: string;
  readonly extra: Readonly<Record<string, string>>;
  readonly amqpUrl: string;
  /** Logical messages published. */
  readonly n: number;
  /** Publishes awaiting their confirm at once. */
  readonly window: number;
  readonly bundleMax: number;
  readonly lingerMs: number;
  readonly bodyBytes: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  /** Set when the run is a child the parent cleans up after (see withNamespaceCleanup): on failure the child leaves the namespace alone. */
  readonly parentCleansUp?: boolean;
}

export interface FillResult {
  /** First publish to last confirm. */
  readonly seconds: number;
  readonly logicalPerSec: number;
  /** AMQP messages this process published during the fill (the counting wrapper). */
  readonly amqpPublished: number;
  /** AMQP messages the broker holds in the namespace's queues afterwards (rabbitmqctl); undefined when it cannot be read. */
  readonly brokerMessages: number | undefined;
  /** Queues of the namespace holding messages afterwards, and all of its queues. */
  readonly brokerQueuesUsed: number | undefined;
  readonly brokerQueues: number | undefined;
  /** Client CPU per logical message, µs. */
  readonly cpuMicrosPerMsg: number;
  /** Connect and topology, before the clock starts. */
  readonly connectSeconds: number;
  readonly toleranceKey: 'set' | 'absent';
}

/** The delay of logical message `i`: uniform over [min, max) by a hash of the index. */
export function fillDelayMs(i: number, minMs: number, maxMs: number): number {
  return minMs + Math.floor(unitHash(`f-${i}`) * (maxMs - minMs));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The orbit config of a fill run: one bundled lane, the queue type, then `--orbit-set`, then the tolerance. */
export function fillConfig(job: Pick<FillJob, 'namespace' | 'amqpUrl' | 'queueType' | 'bundleMax' | 'lingerMs' | 'extra' | 'tolerance'>): VariantConfig {
  const lane = { name: LANE, workAhead: false, bundle: { max: job.bundleMax, linger: `${job.lingerMs}ms` } };
  return variantConfig(job.namespace, job.amqpUrl, { delay: { queueType: job.queueType }, lanes: [lane] }, job.extra, job.tolerance);
}

/**
 * One-way: N logical messages published through orbit's Scheduler (`scheduler.publish(lane,
 * body, { id, delay })`, `window` awaiting their confirm at once) into a lane with
 * `bundle.max`, each with its own delay between `minDelayMs` and `maxDelayMs`. Nothing
 * consumes. Timed from the first publish to the last confirm (connecting and declaring the
 * topology come first, untimed). AMQP messages: what this process sent (counting wrapper) and
 * what the broker holds in the namespace's queues afterwards (`rabbitmqctl list_queues`, which
 * also sees queues declared on demand, e.g. the ladder's `<ns>.wait…` rungs).
 */
export async function runFill(job: FillJob, progress: (line: string) => void): Promise<FillResult> {
  installAmqpCounters();
  const namespace = job.namespace;
  const { config, tolerance: toleranceKey } = fillConfig(job);
  const declared = buildTopology(config);
  const cleanup = owe(() => deleteNamespace(job.amqpUrl, namespace, { queues: declared.queues.map((q) => q.name), exchanges: declared.exchanges.map((e) => e.name) }));
  const scheduler = new Scheduler({ config });
  // Bounded: a publisher that never gets its confirms must not keep the cleanup waiting.
  const closeScheduler = owe(async () => {
    await atMost(scheduler.close(), 10_000);
  });
  let result: FillResult;
  try {
    const c0 = nowSeconds();
    await scheduler.connect();
    const connectSeconds = nowSeconds() - c0;
    progress(`publishing ${job.n.toLocaleString('en-US')} logical messages, delays ${job.minDelayMs / 60_000} min – ${job.maxDelayMs / 3_600_000} h, window ${job.window}`);
    const p0 = snapshotCounts().published;
    const cpu0 = cpuSeconds();
    const t0 = nowSeconds();
    // A bulk load, as `orbit seed` does it: `window` messages awaiting their confirm at once;
    // when the window is full, the oldest open bundles are sent until half of it is left
    // lingering. (Awaiting each `publish` instead would wait for every bundle's hold, on the
    // ladder up to tolerance/2 × delay: minutes for a message due in a day.)
    let confirmed = 0;
    let outstanding = 0;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const settle = (_token: number, ok: boolean, err?: unknown): void => {
      outstanding--;
      if (ok) confirmed++;
      else failure ??= err;
      const w = wake;
      wake = undefined;
      w?.();
    };
    const waitForRoom = async (limit: number, keep: number): Promise<void> => {
      while (outstanding >= limit && failure === undefined) {
        scheduler.flush(keep);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    const load = async (): Promise<void> => {
      for (let i = 0; i < job.n && failure === undefined; i++) {
        if (outstanding >= job.window) await waitForRoom(job.window, Math.floor(job.window / 2));
        outstanding++;
        scheduler.sendWith(scheduler.prepare(LANE, paddedBody(i, job.bodyBytes), { id: `f-${i}`, delay: fillDelayMs(i, job.minDelayMs, job.maxDelayMs) }), settle, i);
      }
      await waitForRoom(1, 0);
      if (failure !== undefined) throw failure;
    };
    await failOnStall(load(), () => confirmed, STALL_MS, 'publishing (confirms)', LIMIT_MS);
    const seconds = nowSeconds() - t0;
    const cpu = cpuSeconds() - cpu0;
    const amqpPublished = snapshotCounts().published - p0;
    await closeScheduler();

    let brokerMessages: number | undefined;
    let brokerQueuesUsed: number | undefined;
    let brokerQueues: number | undefined;
    if (await brokerIsLocal()) {
      // Confirmed means enqueued; quorum queues report their counts every few seconds.
      const deadline = Date.now() + (job.queueType === 'quorum' ? 20_000 : 5_000);
      for (;;) {
        const q = await namespaceCount(namespace);
        brokerMessages = q.messages;
        brokerQueues = q.queues;
        brokerQueuesUsed = q.used;
        if (q.messages >= amqpPublished || Date.now() > deadline) break;
        await sleep(1000);
      }
    } else {
      progress('rabbitmqctl cannot reach the broker: AMQP messages from the counting wrapper only');
    }
    result = {
      seconds,
      logicalPerSec: job.n / seconds,
      amqpPublished,
      brokerMessages,
      brokerQueuesUsed,
      brokerQueues,
      cpuMicrosPerMsg: (cpu * 1e6) / job.n,
      connectSeconds,
      toleranceKey,
    };
  } catch (err) {
    progress(`failed: ${err instanceof Error ? err.message : String(err)}`);
    // A stuck publisher may keep declaring queues while they are deleted: in a child, leave the
    // namespace to the parent, which deletes it once this process (and its connections) is gone.
    if (job.parentCleansUp) {
      progress(`leaving ${namespace} to the parent to delete`);
      throw err;
    }
    await closeScheduler();
    await cleanup();
    throw err;
  }
  await closeScheduler();
  await cleanup();
  return result;
}

interface NamespaceCount {
  readonly queues: number;
  /** Queues holding at least one message. */
  readonly used: number;
  readonly messages: number;
}

/** The namespace's queues and the messages in them, as `rabbitmqctl list_queues` reports them. */
async function namespaceCount(namespace: string): Promise<NamespaceCount> {
  const stdout = await benchCtl(['-q', 'list_queues', 'name', 'messages', '--no-table-headers']);
  let queues = 0;
  let used = 0;
  let messages = 0;
  for (const line of stdout.split('\n')) {
    const [name, count] = line.trim().split(/\s+/);
    if (!name?.startsWith(`${namespace}.`)) continue;
    queues++;
    const c = Number(count) || 0;
    if (c > 0) used++;
    messages += c;
  }
  return { queues, used, messages };
}
