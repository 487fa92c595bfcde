import { createHash } from 'node:crypto';
import type { Channel, ConsumeMessage } from 'amqplib';
import { drainQueue as drain } from '../amqp/drain-queue';
import type { BrokerSession } from '../publish/session';
import type { TopologyConfig } from '../config/types';
import { delayUntil, destinationOf, routeDelay } from '../delay/routing';
import { BrokerError, errorMessage } from '../errors';
import { headersOf, messageIdOf, readState, withoutBrokerHeaders, type Headers } from '../message/headers';
import { CURRENT_BROKER, type BrokerFeatures } from '../topology/broker-features';
import { buildTopology, storageArguments, type BindingSpec, type QueueSpec } from '../topology/build';
import type { QueueDrift } from '../topology/drift';
import { names } from '../naming/names';

export interface MigratedQueue {
  readonly drift: QueueDrift;
  /** Messages the queue held (or received) during the migration, all put back. */
  readonly moved: number;
  /** Copies routed twice while the queue was being swapped, dropped once (same id, due, runs and body). */
  readonly duplicatesDropped: number;
}

export interface MigrateOptions {
  /** Told before each queue is migrated. */
  readonly onQueue?: (drift: QueueDrift) => void;
}

/**
 * A message moved into the holding queue by name loses its routing key (the default
 * exchange sets it to the queue's name), which names its destination lane: kept here.
 */
const ROUTE_HEADER = 'x-orbit-migrate-route';

/**
 * `orbit migrate`: redeclares every queue the session found with other arguments (an older
 * orbit's or an older broker's, see `topology/drift.ts`) as this orbit declares it for this
 * broker, losing nothing. For each queue Q:
 *
 * 1. a holding queue `Q.migrating` is bound wherever Q is bound, then Q is unbound, so new
 *    arrivals land in the holding queue (the few routed in between land in both: the
 *    duplicate is dropped in step 4);
 * 2. Q's messages move to the holding queue, each acked only once its copy is confirmed;
 * 3. Q is deleted (only when empty and unused) and declared again with the new arguments
 *    and bindings;
 * 4. the holding queue is drained back: a delay level's messages are routed afresh by their
 *    own due time (a level's TTL would restart on re-entry, so they would run up to a TTL
 *    late), every other queue's messages go straight back to Q in order; then it is deleted.
 *
 * Refuses a queue with consumers (stop the daemons first): a daemon would redeclare it in
 * the middle. Interrupted, it is safe to run again: a holding queue left behind is drained.
 */
export async function migrateQueues(
  session: BrokerSession,
  config: TopologyConfig,
  options: MigrateOptions = {},
): Promise<MigratedQueue[]> {
  const broker = session.topology.broker ?? CURRENT_BROKER;
  const topology = buildTopology(config, broker);
  const out: MigratedQueue[] = [];
  const drifts = new Map(session.topology.drifts().map((d) => [d.queue, d]));
  for (const spec of topology.queues) {
    const drift = drifts.get(spec.name);
    const bindings = topology.bindings.filter((b) => b.kind === 'queue' && b.destination === spec.name);
    if (drift) {
      options.onQueue?.(drift);
      out.push({ drift, ...(await migrateQueue(session, config, broker, spec, bindings, (drift.existingType ?? spec.arguments['x-queue-type']) === 'quorum')) });
    } else if (await exists(session, holdingQueue(spec.name))) {
      // An earlier run stopped after redeclaring the queue: put back what it still holds.
      const restored = await restore(session, config, spec);
      out.push({ drift: { queue: spec.name, role: spec.role, argument: '(resumed)', severity: 'ignored', why: 'an interrupted migration left messages to put back' }, ...restored });
    }
  }
  return out;
}

function holdingQueue(queue: string): string {
  return `${queue}.migrating`;
}

async function exists(session: BrokerSession, queue: string): Promise<boolean> {
  try {
    await session.withChannel('migrate', (ch) => ch.checkQueue(queue));
    return true;
  } catch {
    return false; // 404: the broker closed that channel, and only that one
  }
}

async function migrateQueue(
  session: BrokerSession,
  config: TopologyConfig,
  broker: BrokerFeatures,
  spec: QueueSpec,
  bindings: readonly BindingSpec[],
  /** The queue as it exists is a quorum queue (its delete cannot use if-empty). */
  existingQuorum: boolean,
): Promise<{ moved: number; duplicatesDropped: number }> {
  const q = spec.name;
  const hold = holdingQueue(q);

  await step(session, `check ${q}`, async (ch) => {
    const { consumerCount } = await ch.checkQueue(q);
    if (consumerCount > 0) {
      throw new BrokerError(`${q} has ${consumerCount} consumer(s): stop the orbit daemons of namespace ${config.namespace} before migrating`, {
        code: 'QUEUE_IN_USE',
      });
    }
    await ch.assertQueue(hold, { durable: true, arguments: storageArguments('classic', broker) });
    for (const b of bindings) await ch.bindQueue(hold, b.source, b.pattern);
    for (const b of bindings) await ch.unbindQueue(q, b.source, b.pattern);
  });

  // An arrival between the move and the delete (only a publish by name can still reach Q)
  // makes the delete refuse; move again.
  for (let attempt = 0; ; attempt++) {
    await step(session, `move ${q} → ${hold}`, (ch) => drain(ch, q, (msg) => publishTo(session, '', hold, msg, routeOf(msg))));
    try {
      await step(session, `delete ${q}`, (ch) => deleteIfEmpty(ch, q, existingQuorum));
      break;
    } catch (err) {
      if (attempt >= 5) throw err;
    }
  }

  await step(session, `declare ${q}`, async (ch) => {
    await ch.assertQueue(q, { durable: true, arguments: spec.arguments });
    for (const b of bindings) await ch.bindQueue(q, b.source, b.pattern);
    for (const b of bindings) await ch.unbindQueue(hold, b.source, b.pattern);
  });

  return restore(session, config, spec);
}

/** Publishes a copy of `msg`, confirmed; `route`: the original routing key to keep in a header. */
function publishTo(session: BrokerSession, exchange: string, routingKey: string, msg: ConsumeMessage, route?: string): Promise<void> {
  const options = republishOptions(msg);
  if (route !== undefined) options.headers = { ...(options.headers as Headers), [ROUTE_HEADER]: route };
  return session.publish.publisher.publish(exchange, routingKey, msg.content, options);
}

/** The routing key the message was routed with before any move. */
function routeOf(msg: ConsumeMessage): string {
  const kept = headersOf(msg)[ROUTE_HEADER];
  return typeof kept === 'string' ? kept : Buffer.isBuffer(kept) ? kept.toString('utf8') : msg.fields.routingKey;
}

/** Step 4: the holding queue back into the (redeclared) queue, then the holding queue gone. */
async function restore(
  session: BrokerSession,
  config: TopologyConfig,
  spec: QueueSpec,
): Promise<{ moved: number; duplicatesDropped: number }> {
  const q = spec.name;
  const hold = holdingQueue(q);
  const seen = new Set<string>();
  let duplicatesDropped = 0;
  const n = names(config.namespace);
  const back = (msg: ConsumeMessage): Promise<void> => {
    const key = identity(msg);
    if (key !== undefined && seen.has(key)) {
      duplicatesDropped++;
      return Promise.resolve();
    }
    if (key !== undefined) seen.add(key);
    if (spec.role !== 'delay') return publishTo(session, '', q, msg);
    // By its own due time, from the top of the levels, to the destination it was going to.
    const now = Date.now();
    const dueAt = readState(headersOf(msg), now).dueAt;
    const route = routeDelay(delayUntil(dueAt, now), destinationOf(routeOf(msg), config.delay.levels), config.delay, n);
    return publishTo(session, route.exchange, route.routingKey, msg);
  };
  const returned = await step(session, `move ${hold} → ${q}`, (ch) => drain(ch, hold, back));
  await step(session, `delete ${hold}`, (ch) => ch.deleteQueue(hold, { ifEmpty: true }));
  return { moved: returned - duplicatesDropped, duplicatesDropped };
}

/**
 * Deletes an empty, unused queue. Classic queues check that themselves (`if-empty`,
 * `if-unused`); quorum queues do not implement those flags (the broker closes the whole
 * connection), so it is checked just before. Unbound and without consumers, nothing but a
 * publish by name can reach the queue in between: the daemons are stopped, and none of
 * orbit's publishers send to a queue by name but the dead-letter publish of a daemon.
 */
async function deleteIfEmpty(ch: Channel, queue: string, quorum: boolean): Promise<void> {
  if (!quorum) {
    await ch.deleteQueue(queue, { ifEmpty: true, ifUnused: true });
    return;
  }
  const { messageCount, consumerCount } = await ch.checkQueue(queue);
  if (messageCount > 0 || consumerCount > 0) throw new BrokerError(`${queue} is not empty yet`, { code: 'QUEUE_NOT_EMPTY' });
  await ch.deleteQueue(queue);
}

/** Runs one step on a channel of its own, naming the step in any failure. */
async function step<T>(session: BrokerSession, what: string, fn: (ch: Channel) => Promise<T>): Promise<T> {
  try {
    return await session.withChannel('migrate', fn);
  } catch (err) {
    if (err instanceof BrokerError) throw err;
    throw new BrokerError(`migrate: ${what}: ${errorMessage(err)}`, { cause: err, code: 'MIGRATE_FAILED' });
  }
}

/** The same message with a new copy's properties: persistent, the broker's death records dropped. */
function republishOptions(msg: ConsumeMessage): { messageId: string } & Record<string, unknown> {
  const p = msg.properties;
  const out: { messageId: string } & Record<string, unknown> = {
    messageId: messageIdOf(p.messageId),
    headers: withoutBrokerHeaders(headersOf(msg)),
  };
  delete (out.headers as Headers)[ROUTE_HEADER];
  for (const key of ['contentType', 'contentEncoding', 'priority', 'correlationId', 'timestamp', 'type', 'appId'] as const) {
    if (p[key] !== undefined) out[key] = p[key];
  }
  return out;
}

/** What makes two copies the same message: id, due, runs and body (none without an id). */
function identity(msg: ConsumeMessage): string | undefined {
  const id = msg.properties.messageId;
  if (typeof id !== 'string' || id === '') return undefined;
  const state = readState(headersOf(msg), 0);
  return `${id}|${state.dueAt}|${state.runs}|${createHash('sha1').update(msg.content).digest('hex')}`;
}
