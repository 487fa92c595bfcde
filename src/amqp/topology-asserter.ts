import type { Channel, ChannelModel, Connection } from 'amqplib';
import type { TopologyConfig } from '../config/types';
import { BrokerError, ConfigError, errnoCode, errorMessage, NamespaceNotFoundError } from '../errors';
import type { Logger } from '../logging/logger';
import { brokerFeatures, brokerProblems, type BrokerFeatures } from '../topology/broker-features';
import { buildTopology, storageArguments, type QueueSpec, type Topology } from '../topology/build';
import { classifyDrift, quorumStoreDrift, unsafeToLook, type QueueDrift } from '../topology/drift';
import { names } from '../naming/names';
import { needsSettle, settleNewQuorumQueues } from './new-quorum-queue';
import { probeQueues } from './probe-queues';

/** How long the existence checks of a read-only command's `inspect` may take. */
const INSPECT_TIMEOUT_MS = 30_000;

/** The version a connection's broker reported in `connection.start`. */
export function brokerVersionOf(connection: Connection): string | undefined {
  const version = (connection.serverProperties as { version?: unknown } | undefined)?.version;
  return typeof version === 'string' ? version : Buffer.isBuffer(version) ? version.toString('utf8') : undefined;
}

/**
 * The argument a PRECONDITION_FAILED redeclare names ("inequivalent arg 'x-queue-mode' for
 * queue …"). The one place orbit reads the broker's error text; undefined for any other error.
 */
export function inequivalentArgument(err: unknown): string | undefined {
  if (errnoCode(err) !== 406) return undefined;
  return /inequivalent arg '([^']+)'/.exec(errorMessage(err))?.[1];
}

const CONFLICT_HINT =
  'was delay.unit, delay.levels, delay.queueType, a lane queueType or maxPriority changed? use a new namespace, ' +
  'or delete the old one once it is empty';

/**
 * Declares orbit's topology for the broker it is connected to, in small ordered steps
 * (exchanges, then queues, then bindings: a binding needs both ends). Idempotent, so it
 * runs again on every (re)connect, on each connection that needs it.
 *
 * The topology is built per connect from the version the broker reports, so a broker
 * upgraded under a running fleet gets the arguments it accepts. A queue that exists with
 * other arguments (declared by an older orbit or on an older broker) is found on a channel
 * of its own — a refused declare closes its channel — classified (`topology/drift.ts`),
 * logged once, and from then on only checked passively; a real conflict (a changed TTL,
 * queue type or priority) stops with the queue named and the way out.
 */
export class TopologyAsserter {
  private readonly drift = new Map<string, QueueDrift>();
  private features: BrokerFeatures | undefined;

  constructor(
    private readonly config: TopologyConfig,
    private readonly logger: Logger,
    /** Told once of each queue found to differ (metrics). */
    private readonly onDrift?: (drift: QueueDrift) => void,
  ) {}

  /** The features of the broker last asserted on; undefined before the first connect. */
  get broker(): BrokerFeatures | undefined {
    return this.features;
  }

  /** Queues found with other arguments than orbit wants, in the order found. */
  drifts(): QueueDrift[] {
    return [...this.drift.values()];
  }

  /** True when looking into `queue` by fetch-and-hand-back could drop or move a message. */
  unsafeToLook(queue: string): boolean {
    return unsafeToLook(this.drift.get(queue));
  }

  /** The topology for a connection's broker; refuses settings the broker cannot carry out. */
  topologyFor(connection: Connection): Topology {
    const features = brokerFeatures(brokerVersionOf(connection));
    const problems = brokerProblems(this.config.lanes, features);
    // A setting this broker cannot carry out is the config's to change: a config error,
    // naming the key (exit 2 from the CLI), not a broker failure.
    if (problems.length > 0) throw new ConfigError(problems.map((p) => p.message).join('; '), { path: problems[0]!.path });
    this.features = features;
    return buildTopology(this.config, features);
  }

  /**
   * Declares `select(topology)` through `model` (channels of its own, closed afterwards, so
   * a refused declare never takes the caller's channel down).
   */
  async assert(model: ChannelModel, select: (t: Topology) => Topology = (t) => t, beforeSettle?: (created: boolean) => Promise<void>): Promise<void> {
    const topology = select(this.topologyFor(model.connection));
    // A quorum queue (or a node's first stream) is not crash-safe for its first moments
    // (`new-quorum-queue.ts`): find the ones this assert creates, and return only once they have settled.
    const settling = topology.queues.filter((q) => needsSettle(q.arguments)).map((q) => q.name);
    const existing = settling.length > 0 ? await probeQueues(model, settling, INSPECT_TIMEOUT_MS) : undefined;
    const creates = settling.some((q) => !existing?.get(q));
    const open = () => refusableChannel(model);
    let ch = await open();
    try {
      await Promise.all(
        topology.exchanges.map((ex) =>
          step(`exchange ${ex.name}`, () => ch.assertExchange(ex.name, ex.type, { durable: true, autoDelete: false, arguments: ex.arguments })),
        ),
      );
      ch = await this.assertQueues(ch, open, topology.queues);
      await Promise.all(
        topology.bindings.map((b) =>
          step(`binding ${b.source} → ${b.destination} (${b.pattern || 'all'})`, () =>
            b.kind === 'queue' ? ch.bindQueue(b.destination, b.source, b.pattern) : ch.bindExchange(b.destination, b.source, b.pattern),
          ),
        ),
      );
    } finally {
      await ch.close().catch(() => undefined);
    }
    await beforeSettle?.(creates);
    if (creates) await settleNewQuorumQueues();
  }

  /**
   * For commands that only look (stats, dlq, migrate --dry-run): declares nothing, so a
   * mistyped namespace is reported instead of created. Fails with NamespaceNotFoundError
   * when the namespace's dead-letter queue, which every orbit topology has, is missing. Each
   * of `queues` that exists is compared with the arguments orbit would declare, and a
   * difference recorded as `assert` records it (a conflict too: looking routes nothing): an
   * equivalent redeclare of an existing queue changes nothing, and is the only way AMQP tells
   * whether arguments differ. Only queues a passive check just found are redeclared; one
   * deleted in that instant would be recreated, a window a CLI command can live with.
   */
  async inspect(model: ChannelModel, queues: readonly string[] = []): Promise<void> {
    const topology = this.topologyFor(model.connection);
    const dead = names(this.config.namespace).dead;
    const found = await probeQueues(model, [dead, ...queues.filter((q) => q !== dead)], INSPECT_TIMEOUT_MS);
    if (!found.get(dead)) {
      const ns = this.config.namespace;
      throw new NamespaceNotFoundError(
        `namespace "${ns}" not found on the broker (no queue ${dead}): check --namespace / ORBIT_NAMESPACE, or run orbit topology to declare it`,
        { path: 'namespace' },
      );
    }
    for (const name of queues) {
      const spec = topology.queues.find((q) => q.name === name);
      if (spec === undefined || !found.get(name) || this.drift.has(name)) continue;
      const ch = await refusableChannel(model);
      try {
        await ch.assertQueue(name, { durable: true, arguments: spec.arguments });
      } catch (err) {
        const argument = inequivalentArgument(err);
        if (argument === undefined) throw failure(`queue ${name}`, err, '');
        this.record(await this.classify(spec, argument, () => refusableChannel(model)));
      } finally {
        await ch.close().catch(() => undefined);
      }
    }
  }

  /**
   * Declares the queues, pipelined; queues known to differ are checked passively. A refusal
   * closes the channel: the refused queue is classified, and whatever was still pending is
   * declared again on a new channel. Each round settles at least one queue, so it ends.
   * Returns the channel still open.
   */
  private async assertQueues(first: Channel, open: () => Promise<Channel>, queues: readonly QueueSpec[]): Promise<Channel> {
    let ch = first;
    let pending = queues;
    while (pending.length > 0) {
      const current = ch;
      const results = await Promise.allSettled(
        pending.map((q) =>
          this.drift.has(q.name) ? current.checkQueue(q.name) : current.assertQueue(q.name, { durable: true, arguments: q.arguments }),
        ),
      );
      const retry: QueueSpec[] = [];
      let found = false;
      for (const [i, r] of results.entries()) {
        if (r.status === 'fulfilled') continue;
        const queue = pending[i]!;
        const argument = this.drift.has(queue.name) ? undefined : inequivalentArgument(r.reason);
        if (argument === undefined) {
          const code = errnoCode(r.reason);
          if (code === 404 && queueUnavailable(r.reason)) {
            // The queue exists but its replicas are not up yet (a quorum queue or stream just
            // after a broker restart): a wait, not a fault; the channel's setup is tried again.
            throw new BrokerError(`queue ${queue.name} is not available yet (its node is recovering): ${errorMessage(r.reason)}`, {
              cause: r.reason,
              code: QUEUE_UNAVAILABLE,
            });
          }
          if (code === 406 || code === 404) {
            throw failure(`queue ${queue.name}`, r.reason, '');
          }
          retry.push(queue); // failed only because an earlier refusal closed the channel
          continue;
        }
        const drift = await this.classify(queue, argument, open);
        if (drift.severity === 'conflict') throw failure(`queue ${queue.name}`, r.reason, ` — ${drift.why}: ${CONFLICT_HINT}`);
        this.record(drift);
        found = true;
        retry.push(queue);
      }
      // Nothing refused but some failed: the channel died under us (connection lost).
      if (!found && retry.length > 0) throw failure(`queue ${retry[0]!.name}`, new Error('channel closed during the declare'), '');
      pending = retry;
      if (pending.length > 0) {
        await ch.close().catch(() => undefined);
        ch = await open();
      }
    }
    return ch;
  }

  /**
   * What a refused redeclare of `queue` means. A dead or unroutable queue refused as classic
   * may be a quorum one (from when those followed `delay.queueType`, or of
   * `deadLetters.queueType: quorum`): the broker names the
   * first argument of its own list that differs, not the type, so a declare with orbit's
   * quorum arguments on a channel of its own asks. It succeeds on such a queue (used as it
   * is); one refused only on the delivery limit is an older orbit's quorum queue (risky on
   * 4.x, as any such queue).
   */
  private async classify(queue: QueueSpec, argument: string, open: () => Promise<Channel>): Promise<QueueDrift> {
    const drift = classifyDrift(queue, argument, this.features!);
    if ((queue.role !== 'dead' && queue.role !== 'unroutable') || queue.arguments['x-queue-type'] === 'quorum') return drift;
    const asQuorum: QueueSpec = { ...queue, arguments: storageArguments('quorum', this.features!) };
    const probe = await open();
    try {
      await probe.assertQueue(queue.name, { durable: true, arguments: asQuorum.arguments });
      return quorumStoreDrift(queue, argument);
    } catch (err) {
      if (inequivalentArgument(err) !== 'x-delivery-limit') return drift;
      return { ...classifyDrift(asQuorum, 'x-delivery-limit', this.features!), existingType: 'quorum' };
    } finally {
      await probe.close().catch(() => undefined);
    }
  }

  private record(drift: QueueDrift): void {
    this.drift.set(drift.queue, drift);
    this.onDrift?.(drift);
    const log = { queue: drift.queue, argument: drift.argument, severity: drift.severity, why: drift.why };
    if (drift.severity === 'ignored') {
      this.logger.info(log, 'queue declared with other arguments; used as it is (`orbit migrate` redeclares it, losing nothing)');
    } else {
      this.logger.warn(log, 'queue declared with other arguments; used as it is, and not looked into — run `orbit migrate` (losing nothing)');
    }
  }
}

async function step(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    // 406 PRECONDITION_FAILED: the object exists with other arguments, or a value is out of range.
    throw failure(what, err, errnoCode(err) === 406 ? ` — the broker refused its arguments: ${CONFLICT_HINT}` : '');
  }
}

/** The code of a setup error that passes on its own: the setup is retried, a start waits (`ManagedChannel`). */
export const QUEUE_UNAVAILABLE = 'QUEUE_UNAVAILABLE';

/**
 * RabbitMQ's 404 for a durable queue whose member is not running ("home node … of durable
 * queue … is down or inaccessible"), as opposed to a queue that does not exist. Read from the
 * broker's text here, once, at the boundary; the rest of orbit decides by `QUEUE_UNAVAILABLE`.
 */
export function queueUnavailable(err: unknown): boolean {
  return /down or inaccessible/.test(errorMessage(err));
}

function failure(what: string, err: unknown, hint: string): BrokerError {
  return new BrokerError(`cannot declare ${what}${hint}: ${errorMessage(err)}`, { cause: err, code: 'TOPOLOGY_FAILED' });
}

/**
 * A channel of its own for declares the broker may refuse: a refusal closes the channel with
 * an error event, which must not crash anything (the rejected call reports it).
 */
async function refusableChannel(model: ChannelModel): Promise<Channel> {
  const ch = await model.createChannel();
  ch.on('error', () => undefined);
  return ch;
}
