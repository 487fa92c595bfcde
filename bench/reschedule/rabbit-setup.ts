import { routeDelay, type DelayRoute } from '../../src/delay/routing';
import { Scheduler } from '../../src/publish/scheduler';
import type { ResolvedConfig } from '../../src/config/types';
import amqplib from 'amqplib';
import { buildTopology, rungQueueSpec, type QueueSpec } from '../../src/topology/build';
import { brokerVersionOf } from '../../src/amqp/topology-asserter';
import { brokerFeatures, type BrokerFeatures } from '../../src/topology/broker-features';
import { names } from '../../src/naming/names';
import { owe } from '../lib/cleanup';
import { benchConfig, deleteNamespace, queueDepth, randomNamespace, waitForDepth } from '../lib/broker';
import type { RescheduleParams } from './contender';

/** The lane every RabbitMQ contender consumes. */
export const LANE = 'bench';

/**
 * The RabbitMQ side shared by orbit and the raw amqplib baseline, so both work on exactly the
 * same broker objects: orbit's own topology (delay levels, deliver exchange, lane queue with
 * x-max-priority, lazy classic queues) in a fresh namespace, and N messages in the lane queue.
 */
export interface RabbitStage {
  readonly namespace: string;
  readonly config: ResolvedConfig;
  readonly laneQueue: string;
  /** Where an hour-ahead reschedule is published: orbit's exchange and routing key for it. */
  readonly route: DelayRoute;
  /** The queue the rescheduled messages wait in: the ladder rung of the delay (the default), or the binary level of its highest bit. */
  readonly holdQueue: string;
  /** Checks that the lane is empty and all N wait one hour ahead. */
  verify(): Promise<string[]>;
  cleanup(): Promise<void>;
}

/** Body of every message: JSON of the size the user's messages have (< 100 bytes). */
export function benchBody(i: number): Buffer {
  return Buffer.from(JSON.stringify({ url: `https://example.com/items/${i}`, seq: i, tier: 'a' }));
}

/** The config of a stage's namespace: orbit's defaults, the lane at the run's concurrency. */
export function stageConfig(namespace: string, params: Pick<RescheduleParams, 'amqpUrl' | 'queueType' | 'concurrency'>): ResolvedConfig {
  return benchConfig(namespace, params.amqpUrl, {
    delay: { queueType: params.queueType },
    lanes: [{ name: LANE, concurrency: params.concurrency }],
    shutdown: { timeout: '30s' },
  });
}

/**
 * Declares the topology and publishes N messages with delay 0 through orbit's Scheduler
 * (straight to the deliver exchange, so into the lane queue), then waits until the lane queue
 * holds all N. Nothing here is timed.
 */
export async function prepareRabbitStage(params: RescheduleParams, contender: string): Promise<RabbitStage> {
  const namespace = randomNamespace(`bench-${contender}`);
  const config = stageConfig(namespace, params);
  const n = names(namespace);
  const topology = buildTopology(config);
  const laneQueue = n.lane(LANE);
  const route = routeDelay(params.delayMs, LANE, config.delay, n);
  // On the ladder (orbit's default) the rung of the delay, declared here as orbit's publisher
  // declares it on first use (the raw contender publishes to it directly); with binary levels,
  // the level of the highest bit, whose queue and exchange share the name.
  const holdQueue = route.rung?.queue ?? route.exchange;
  // Owed from here on: an interrupted run still deletes the namespace.
  const cleanup = owe(() =>
    deleteNamespace(params.amqpUrl, namespace, {
      queues: topology.queues.map((q) => q.name),
      exchanges: topology.exchanges.map((e) => e.name),
    }),
  );

  try {
    await preloadLane(config, params.n);
    if (route.rung) await declareRung(params.amqpUrl, (broker) => rungQueueSpec(config, route.rung!.ttlMs, broker));
    await waitForDepth(params.amqpUrl, laneQueue, params.n, 120_000);
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }

  return {
    namespace,
    config,
    laneQueue,
    route,
    holdQueue,
    cleanup,
    async verify() {
      const problems: string[] = [];
      // Confirmed means enqueued, but give the broker a moment to report the final count.
      await waitForDepth(params.amqpUrl, holdQueue, params.n, 10_000).catch(() => undefined);
      const held = await queueDepth(params.amqpUrl, holdQueue);
      const left = await queueDepth(params.amqpUrl, laneQueue);
      if (held !== params.n) problems.push(`${holdQueue} holds ${held} messages, expected ${params.n}`);
      if (left !== 0) problems.push(`${laneQueue} still holds ${left} messages, expected 0`);
      return problems;
    },
  };
}

/**
 * Declares the rung with the arguments orbit's publisher gives it on this broker (lazy v2
 * classic before 3.12): declared with a 4.x broker's arguments, a 3.10 rung would be a v1
 * classic queue, which alone cost the one-way loop ~40 % (session 29), and the daemon's own
 * declare later would not change it (RabbitMQ 3.x does not compare the storage arguments).
 */
async function declareRung(amqpUrl: string, specFor: (broker: BrokerFeatures) => QueueSpec): Promise<void> {
  const conn = await amqplib.connect(amqpUrl);
  try {
    const spec = specFor(brokerFeatures(brokerVersionOf(conn.connection)));
    const ch = await conn.createChannel();
    await ch.assertQueue(spec.name, { durable: true, arguments: spec.arguments });
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Publishes N messages with delay 0 to the lane, many confirms outstanding at once. */
export async function preloadLane(config: ResolvedConfig, count: number): Promise<void> {
  const scheduler = new Scheduler({ config });
  try {
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) await scheduler.publish(LANE, benchBody(i));
    };
    await Promise.all(Array.from({ length: Math.min(500, count) }, worker));
  } finally {
    await scheduler.close();
  }
}
