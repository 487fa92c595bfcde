import type { AmqpConnectionManager } from 'amqp-connection-manager';
import { closeConnection, connectionName, openConnection } from './amqp/connection';
import { CHANNEL_CLOSE_TIMEOUT_MS } from './amqp/managed-channel';
import type { PublishChannel } from './amqp/publish-channel';
import type { RungDeclarer } from './amqp/rung-declarer';
import { BrokerMemoryWatch } from './amqp/broker-memory-watch';
import { readBrokerNodes, type BrokerNodesResult } from './amqp/read-broker-nodes';
import { findStrandedLanes, type StrandedQueue } from './amqp/stranded-lanes';
import { TombstoneFollower } from './amqp/tombstone-follower';
import { TopologyAsserter } from './amqp/topology-asserter';
import { withTemporaryChannel } from './amqp/temporary-channel';
import { UNANSWERED, answeredWithin, within } from './amqp/within';
import type { LaneConfig, ResolvedConfig } from './config/types';
import { delayOfLane } from './delay/routing';
import { errorMessage, HandlerLoadError } from './errors';
import { Lifecycle, runSteps } from './lifecycle';
import { createLogger, type Logger } from './logging/logger';
import type { MessagePublisher } from './publish/message-publisher';
import { fitLadderToNodes } from './publish/ladder-fit';
import { openPublisher } from './publish/open-publisher';
import { laneQueues } from './naming/partition';
import { clusterPlacementWarnings } from './topology/cluster-placement';
import { capacityWarnings, handlesNeeded, rungBudget, type BrokerNodeLimits } from './topology/broker-capacity';
import { quorumSetting } from './topology/broker-memory';
import { buildTopology, ladderQueues, type QueueSpec, type Topology } from './topology/build';
import { laneTopology } from './topology/lane-topology';
import { Tombstones } from './message/tombstones';
import { RecentRuns } from './worker/recent-runs';
import { names } from './naming/names';
import type { Handler } from './worker/handler-types';
import { LaneWorker } from './worker/lane-worker';
import { WorkAhead } from './worker/work-ahead';
import { RungHolder } from './worker/rung-holder';
import { ConsumerWatch } from './worker/consumer-watch';
import { UnroutableReturn } from './worker/unroutable-return';
import { DeadLetterQueue } from './dlq/dead-letter-queue';
import { createHttpHandler, type HttpHandler } from './worker/http-handler';
import { loadHandler } from './worker/load-handler';
import type { WorkerObserver } from './worker/observer';
import { combineObservers } from './worker/observer';
import { HttpServer } from './http/server';
import { UiConsole } from './http/ui';
import { Metrics } from './metrics/metrics';
import { QueueSampler } from './metrics/queue-sampler';

/** How often a daemon on the ladder looks for rungs other publishers declared. */
const RUNG_DISCOVERY_MS = 30_000;
/** The longest a start waits for the lane record before going on without it. */
const STRANDED_CHECK_MS = 10_000;
/** A shutdown step that takes this long is logged at warn, with its name. */
const SLOW_STOP_STEP_MS = 2000;
/** After the drain, what every channel and connection close of a stop gets together (`doStop`). */
export const STOP_CLOSE_BUDGET_MS = CHANNEL_CLOSE_TIMEOUT_MS;
/**
 * What a consumer cancel or a connection close gets at least, even past its deadline: a healthy
 * broker answers in milliseconds, and a cut socket drops the acks still in its write buffer.
 */
const ANSWER_MIN_MS = 500;
/** Looks at the management API this many more times, CAPACITY_ROUND_MS apart, while a node's figures are missing. */
const CAPACITY_ROUNDS = 3;
const CAPACITY_ROUND_MS = 5000;

export interface DaemonOptions {
  readonly config: ResolvedConfig;
  /** @defaultValue a JSON logger at `config.log.level` on stdout */
  readonly logger?: Logger;
  /** Handlers by lane name; lanes not listed load the module named in their config. */
  readonly handlers?: Readonly<Record<string, Handler>>;
  readonly observer?: WorkerObserver;
  /** How long start() waits for the broker. @defaultValue 30 s */
  readonly connectTimeoutMs?: number;
  /** How often queue depths are sampled for `orbit_queue_messages`. @defaultValue 5 s */
  readonly queueSampleIntervalMs?: number;
}

/**
 * The composition root: wires connections, topology, publisher and lane workers, and owns
 * the order in which they start and stop.
 */
export class Daemon {
  readonly config: ResolvedConfig;
  /**
   * The namespace's exchanges, queues and bindings by name and role. Their arguments are
   * those of a current broker; what was declared on the connected one is `asserter`'s.
   */
  readonly topology: Topology;
  /** Declares the topology on each connect, for the broker's version; knows queues that differ. */
  readonly asserter: TopologyAsserter;
  private readonly log: Logger;
  private readonly lifecycle: Lifecycle;
  private publishConnection: AmqpConnectionManager | undefined;
  private consumeConnection: AmqpConnectionManager | undefined;
  private publish: PublishChannel | undefined;
  private publisher: MessagePublisher | undefined;
  private workers: LaneWorker[] = [];
  /** The cancels this daemon knows (README, "Cancel and replace"), fed by `follower`. */
  private readonly tombstones: Tombstones;
  /** The runs settled lately, for every lane: copies of them are dropped (`worker/recent-runs.ts`). */
  private readonly recentRuns = new RecentRuns();
  private follower: TombstoneFollower | undefined;
  private sampler: QueueSampler | undefined;
  private workAhead: WorkAhead | undefined;
  /** Consumes the short rungs when `delay.hold` is set (`worker/rung-holder.ts`). */
  private rungHolder: RungHolder | undefined;
  private consumerWatch: ConsumerWatch | undefined;
  private unroutableReturn: UnroutableReturn | undefined;
  private rungs: RungDeclarer | undefined;
  private discovery: NodeJS.Timeout | undefined;
  /** The start-time read of the broker's limits (settles on its own, bounded by its timeout). */
  private capacityCheck: Promise<void> | undefined;
  /** Settles once the first management read is applied to the ladders (`fitLadder`). */
  private ladderFitted: Promise<void> | undefined;
  /** The rung budget the ladders were last thinned to; undefined while they are the configured ones. */
  private fittedBudget: number | undefined;
  private memoryWatch: BrokerMemoryWatch | undefined;
  /** Queues of lanes removed from the config that still hold messages, by queue: their lane. */
  private readonly stranded = new Map<string, string>();
  private readonly httpHandlers: HttpHandler[] = [];
  private http: HttpServer | undefined;
  private ui: UiConsole | undefined;
  /** Every metric of this daemon, on its own registry. */
  readonly metrics: Metrics;
  /** What the lanes and work-ahead report to: the metrics, and the caller's own observer. */
  private readonly observer: WorkerObserver;
  /** The HTTP port actually bound (when `http.port` is not 0). */
  httpPort: number | undefined;

  constructor(private readonly options: DaemonOptions) {
    this.config = options.config;
    this.topology = buildTopology(this.config);
    this.log = options.logger ?? createLogger(this.config.log.level);
    this.metrics = new Metrics(() => this.readiness().ready);
    this.observer = combineObservers(this.metrics.workerObserver(), options.observer);
    this.tombstones = new Tombstones(this.config.cancel.retentionMs);
    this.metrics.trackTombstones(() => this.tombstones.size);
    this.metrics.trackLadderTolerance(
      this.config.lanes.map((l) => l.name),
      (lane) => this.publisher?.ladderOf(lane).tolerance ?? delayOfLane(this.config.delay, this.config.lanes.find((l) => l.name === lane)).tolerance,
    );
    this.metrics.trackStalledQueues(() => this.publish?.publisher.suspectQueues() ?? []);
    this.asserter = new TopologyAsserter(this.config, this.log, (d) =>
      this.metrics.queueDrift.set({ queue: d.queue, argument: d.argument, severity: d.severity }, 1),
    );
    this.lifecycle = new Lifecycle(
      () => this.doStart(),
      () => this.doStop(),
    );
  }

  /** Idempotent; resolves when every lane is consuming. */
  start(): Promise<void> {
    return this.lifecycle.start();
  }

  /**
   * Idempotent graceful stop: stop consuming, let in-flight handlers finish and settle
   * (bounded by `shutdown.timeout` from the call), then close channels and connections
   * (bounded by STOP_CLOSE_BUDGET_MS together, even on a broker that answers nothing).
   * Messages still unsettled at the deadline are left unacked, so the broker hands them out again.
   */
  stop(): Promise<void> {
    return this.lifecycle.stop();
  }

  /**
   * Messages in flight across all lanes: whose handler runs or whose outcome is being
   * settled — the sum of `orbit_in_flight` (`LaneWorker.active`).
   */
  get inFlight(): number {
    return this.workers.reduce((n, w) => n + w.active, 0);
  }

  /** Connected, topology asserted, every lane consuming — or why not. */
  readiness(): { ready: boolean; reason?: string } {
    if (!this.lifecycle.started) return { ready: false, reason: this.lifecycle.stopped ? 'stopping' : 'starting' };
    if (!this.publish?.channel.current()) return { ready: false, reason: 'publish channel not connected' };
    const idle = this.workers.find((w) => !w.ready);
    if (idle) return { ready: false, reason: 'a lane is not consuming' };
    return { ready: true };
  }

  /**
   * Starts in named steps, mirroring `doStop`; the first failure ends the start (the
   * lifecycle's stop then releases what the steps before it opened).
   */
  private async doStart(): Promise<void> {
    const timeout = this.options.connectTimeoutMs ?? 30_000;
    let handlers = new Map<string, Handler>();
    const steps: ReadonlyArray<readonly [string, () => Promise<unknown>]> = [
      ['load handlers', async () => (handlers = await this.loadHandlers())],
      // HTTP first: /healthz answers and /readyz explains while the broker is still awaited.
      ['start http', () => this.startHttp()],
      ['open publishing', () => this.openPublishing(timeout)],
      // In the background: the management API may be absent or slow, and only informs.
      ['check broker capacity', async () => void (this.capacityCheck ??= this.checkBrokerCapacity())],
      ['watch broker memory', async () => this.watchBrokerMemory()],
      ['open consume connection', async () => this.openConsumeConnection()],
      // Before any lane consumes: a copy cancelled while this daemon was down must not run.
      ['read cancels', () => this.followCancels(timeout)],
      // Before any lane reschedules: a broker that cannot keep the configured ladder's queues
      // open gets a thinned one (`publish/ladder-fit.ts`). One management read, bounded.
      ['fit ladder to broker', async () => this.ladderFitted],
      ['start lanes', () => this.startLanes(handlers, timeout)],
      ['start work-ahead', async () => this.startWorkAhead()],
      ['start rung holder', async () => this.startRungHolder()],
      ['start consumer watch', async () => this.startConsumerWatch()],
      ['start rung discovery', async () => this.rungs && this.discoverRungs(this.rungs)],
      ['check stranded lanes', () => this.checkStrandedLanes(Math.min(timeout, STRANDED_CHECK_MS))],
      ['start unroutable return', async () => this.startUnroutableReturn()],
      ['start queue sampling', async () => this.startQueueSampling()],
    ];
    for (const [, step] of steps) await step();
    this.log.info(
      { namespace: this.config.namespace, lanes: this.config.lanes.map((l) => `${l.name}×${l.concurrency}`) },
      'orbit started',
    );
  }

  private async startHttp(): Promise<void> {
    const { config } = this;
    if (config.http.port <= 0) return;
    // The console reads the broker on a connection of its own, opened at its first request.
    this.ui = config.http.ui.enabled ? new UiConsole({ config, logger: this.log, registry: this.metrics.registry }) : undefined;
    this.http = new HttpServer({ registry: this.metrics.registry, readiness: () => this.readiness(), ui: this.ui }, this.log);
    this.httpPort = await this.http.listen(config.http.host, config.http.port);
  }

  /** The publish connection (whose flow control pauses the lanes), its channel, rungs and publisher. */
  private async openPublishing(timeout: number): Promise<void> {
    const { config, metrics } = this;
    const publishEvents = metrics.connectionEvents('publish');
    this.publishConnection = openConnection(config.amqp, connectionName(config.namespace, 'publish'), this.log, {
      ...publishEvents,
      onBlocked: (reason) => {
        publishEvents.onBlocked?.(reason);
        void Promise.all(this.workers.map((w) => w.pause()));
      },
      onUnblocked: () => {
        publishEvents.onUnblocked?.();
        void Promise.all(this.workers.map((w) => w.resume()));
      },
      // A block dies with its connection (the publisher forgets it too) and a new connection
      // starts unblocked, with no `unblocked` event ever coming: resume, or the lanes stay
      // paused for good after a broker restart during an alarm.
      onDisconnect: (err) => {
        publishEvents.onDisconnect?.(err);
        void Promise.all(this.workers.map((w) => w.resume()));
      },
    });
    // The ladder's rungs are declared when first used (and seen on deliveries, for work-ahead).
    const { channel, rungs, publisher } = openPublisher(this.publishConnection, config, this.asserter, this.log, metrics.publishObserver());
    this.publish = channel;
    this.rungs = rungs;
    this.publisher = publisher;
    await this.publish.ready(timeout);
  }

  private openConsumeConnection(): void {
    const { config } = this;
    this.consumeConnection = openConnection(
      config.amqp,
      connectionName(config.namespace, 'consume'),
      this.log,
      this.metrics.connectionEvents('consume'),
    );
  }

  /** Reads the tombstone stream up to its end, and follows it from then on. */
  private async followCancels(timeout: number): Promise<void> {
    const n = names(this.config.namespace);
    this.follower = new TombstoneFollower({
      connection: this.consumeConnection!,
      queue: n.tombstones,
      signal: n.cancelSignal,
      tombstones: this.tombstones,
      logger: this.log,
      timeoutMs: this.config.amqp.publishTimeoutMs,
    });
    await this.follower.ready(timeout);
    this.log.info({ tombstones: this.tombstones.size }, 'cancels read');
  }

  /** A worker per lane; resolves once every lane consumes. */
  private async startLanes(handlers: ReadonlyMap<string, Handler>, timeout: number): Promise<void> {
    const { config, metrics } = this;
    const n = names(config.namespace);
    const lanes = new Map(config.lanes.map((l) => [l.name, l]));
    metrics.initLanes(config.lanes);
    for (const lane of config.lanes) {
      this.workers.push(
        new LaneWorker({
          lane,
          queues: laneQueues(lane, n),
          handler: handlers.get(lane.name)!,
          lanes,
          delay: config.delay,
          connection: this.consumeConnection!,
          publisher: this.publisher!,
          rungs: this.rungs,
          logger: this.log,
          observer: this.observer,
          tombstones: this.tombstones,
          recentRuns: this.recentRuns,
          holding: this.holds(),
          setup: async (_ch, model) => {
            await this.asserter.assert(model, (t) => laneTopology(t, lane.name));
            // After a reconnect: the cancels made meanwhile are read before the lane consumes again.
            await this.follower!.caughtUp(timeout);
          },
        }),
      );
    }
    await Promise.all(this.workers.map((w) => w.waitUntilConsuming(timeout)));
  }

  /** Restarts a lane consumer the broker stopped delivering to (`worker/consumer-watch.ts`). */
  private startConsumerWatch(): void {
    this.consumerWatch = new ConsumerWatch({
      lanes: this.workers,
      connection: this.consumeConnection!,
      logger: this.log,
      observer: this.observer,
      probeTimeoutMs: this.config.amqp.publishTimeoutMs,
    });
    this.consumerWatch.start();
  }

  /** Whether this daemon holds its short rungs: `delay.hold` set, on the ladder. */
  private holds(): boolean {
    return this.config.delay.holdMs > 0 && this.rungs !== undefined;
  }

  private startRungHolder(): void {
    if (!this.holds()) return;
    this.rungHolder = new RungHolder({
      connection: this.consumeConnection!,
      workers: this.workers,
      rungs: this.rungs!,
      horizonMs: this.config.delay.holdMs,
      forward: (msg) => this.publisher!.forward(msg),
      logger: this.log,
      observer: this.observer,
    });
    this.rungHolder.start();
  }

  private startWorkAhead(): void {
    this.workAhead = new WorkAhead({
      connection: this.consumeConnection!,
      workers: this.workers,
      names: names(this.config.namespace),
      delay: this.config.delay,
      logger: this.log,
      // The same observer as the lanes': metrics count what is taken early, and a caller's own observer hears it.
      observer: this.observer,
      unsafeToLook: (queue) => this.asserter.unsafeToLook(queue),
      forward: (msg) => this.publisher!.forward(msg),
      lookTimeoutMs: this.config.amqp.publishTimeoutMs,
      rungs: this.rungs,
      // The holder starts after work-ahead; it is looked up at each take.
      held: (queue, lane, maxAdvanceMs) => this.rungHolder?.takeEarly(queue, lane, maxAdvanceMs),
    });
    this.workAhead.start();
  }

  /** Sends messages of this daemon's lanes found in `<ns>.unroutable` back to them, when the sampler sees it grow. */
  private startUnroutableReturn(): void {
    const { config } = this;
    const dlq = new DeadLetterQueue(
      {
        namespace: config.namespace,
        withChannel: (name, fn) => withTemporaryChannel(this.consumeConnection!, name, this.log, fn),
        publisher: this.publisher!,
        topology: this.asserter,
      },
      config.lanes,
    );
    this.unroutableReturn = new UnroutableReturn({
      dlq,
      ready: () => this.readiness().ready,
      logger: this.log,
      returned: (messages) => this.metrics.unroutableReturned.inc(messages),
    });
  }

  /** Samples every queue's depth for the metrics: the topology's, known rungs and stranded lanes' queues. */
  private startQueueSampling(): void {
    const { metrics, rungs } = this;
    const unroutable = names(this.config.namespace).unroutable;
    const sampled = (): ReadonlyArray<Pick<QueueSpec, 'name' | 'role'>> => [
      ...(rungs ? [...this.topology.queues, ...rungs.knownRungs().map((r) => ({ name: r.queue, role: 'delay' as const }))] : this.topology.queues),
      ...[...this.stranded.keys()].map((name) => ({ name, role: 'lane' as const })),
    ];
    this.sampler = new QueueSampler(
      this.consumeConnection!,
      sampled,
      (depths) => {
        // A removed lane's queue has a gauge of its own (`orbit_stranded_messages`), not a lane's.
        const stranded = depths.filter((d) => this.stranded.has(d.queue));
        for (const d of stranded) metrics.recordStranded(this.stranded.get(d.queue)!, d.queue, d.messages, d.consumers);
        metrics.recordQueueDepths(stranded.length === 0 ? depths : depths.filter((d) => !this.stranded.has(d.queue)));
        const unroutableDepth = depths.find((d) => d.queue === unroutable);
        if (unroutableDepth) this.unroutableReturn?.sampled(unroutableDepth.messages);
      },
      this.options.queueSampleIntervalMs ?? 5000,
      this.log,
      (queue) => {
        rungs?.gone(queue);
        const lane = this.stranded.get(queue);
        if (lane === undefined) return;
        this.stranded.delete(queue);
        metrics.forgetStranded(lane, queue);
      },
    );
    this.sampler.start();
  }

  /**
   * Reads the broker's nodes from the management API: thins the ladders to a node that cannot
   * keep the configured ones open (`publish/ladder-fit.ts`; `ladderFitted` settles once the
   * first read is applied), warns when a node uses most of its handles already
   * (`topology/broker-capacity.ts`), and when the broker is a cluster on which classic queues
   * of the config would live on one node (`topology/cluster-placement.ts`). A broker without
   * the management API is noted at info and not judged: AMQP does not tell a client the
   * broker's limits or its nodes. Resolves when the judging is done (in the background).
   */
  private checkBrokerCapacity(): Promise<void> {
    if (!this.config.amqp.management.check) return Promise.resolve();
    const first = readBrokerNodes(this.config.amqp).catch((err: unknown): BrokerNodesResult => ({ unavailable: errorMessage(err) }));
    this.ladderFitted = first.then((result) => {
      if ('nodes' in result) this.fitLadder(result.nodes, result.from);
    });
    return this.judgeCapacity(first);
  }

  /** Thins the ladders when the nodes' handles cannot keep the configured ones open (`publish/ladder-fit.ts`); once per budget. */
  private fitLadder(nodes: readonly BrokerNodeLimits[], managementApi: string): void {
    const budget = rungBudget(nodes)?.budget;
    if (!this.publisher || budget === undefined || budget === this.fittedBudget) return;
    const fit = fitLadderToNodes(this.config, this.publisher, nodes, this.log, { managementApi });
    if (fit) this.fittedBudget = budget;
  }

  private async judgeCapacity(first: Promise<BrokerNodesResult>): Promise<void> {
    const { amqp, delay, lanes } = this.config;
    try {
      let result = await first;
      // A node's figures appear with the management plugin's first statistics round (every
      // 5 s by default): a broker that just booted has none yet. Look again a few times.
      for (let round = 0; round < CAPACITY_ROUNDS && 'nodes' in result && result.nodes.some((n) => n.fdTotal === undefined); round++) {
        await new Promise((resolve) => setTimeout(resolve, CAPACITY_ROUND_MS).unref());
        if (this.lifecycle.stopped) return;
        result = await readBrokerNodes(amqp);
        if ('nodes' in result) this.fitLadder(result.nodes, result.from);
      }
      if ('unavailable' in result) {
        this.log.info(
          { managementApi: result.unavailable, handlesNeeded: handlesNeeded(delay, lanes) },
          "broker file-handle limit not checked: the management API did not answer (set amqp.management.url, or amqp.management.check false); the broker needs the handles given (docs/DEPLOY.md)",
        );
        return;
      }
      const silent = result.nodes.filter((n) => n.fdTotal === undefined).map((n) => n.name);
      if (silent.length > 0) {
        this.log.info({ nodes: silent, managementApi: result.from }, "broker file-handle limit not checked on these nodes: the management API reports none (its metrics collector may be off)");
      }
      // A node too small for the configured ladder was told of when the ladder was thinned to it.
      const warnings = capacityWarnings(result.nodes, delay, lanes).filter((w) => w.kind === 'busy' || this.fittedBudget === undefined);
      for (const w of warnings) this.log.warn({ node: w.node, path: w.path, managementApi: result.from }, w.message);
      for (const w of clusterPlacementWarnings(result.nodes.map((n) => n.name), this.config)) this.log.warn({ path: w.path, managementApi: result.from }, w.message);
      if (warnings.length === 0 && silent.length < result.nodes.length) {
        this.log.info({ nodes: result.nodes.map((n) => `${n.name} ${n.fdUsed ?? '?'}/${n.fdTotal ?? '?'}`), handlesNeeded: handlesNeeded(delay, lanes) }, 'broker file handles checked');
      }
    } catch (err) {
      this.log.info({ err: errorMessage(err) }, 'broker file-handle limit not checked');
    }
  }

  /**
   * With quorum queues in the config, watches the broker's nodes for a quorum WAL left at
   * RabbitMQ's default size (`amqp/broker-memory-watch.ts`): its memory shows only once it is
   * written to, so it is looked at now and every few minutes, in the background.
   */
  private watchBrokerMemory(): void {
    if (!this.config.amqp.management.check || quorumSetting(this.config) === undefined) return;
    this.memoryWatch ??= new BrokerMemoryWatch(this.config.amqp, this.config, this.log);
    this.memoryWatch.start();
  }

  /**
   * Records the configured lane queues in the namespace's lane record and warns of recorded
   * queues the config no longer has that still exist with no consumer: a removed lane whose
   * messages would otherwise wait there unseen (`amqp/stranded-lanes.ts`). They are sampled
   * into `orbit_stranded_messages` from then on. Their binding stays: messages still on their
   * way to the old lane keep landing in its queue, all in one place for `orbit lanes move`
   * (README, "Removed lanes"). Never stops the start: the record is an aid, not the topology.
   */
  private async checkStrandedLanes(timeoutMs: number): Promise<void> {
    const model = this.publishConnection?.connection;
    if (!model) return;
    try {
      const found = await within(findStrandedLanes(model, this.config, { mode: 'record', timeoutMs }), timeoutMs, () => new Error(`no answer within ${timeoutMs} ms`));
      for (const q of found.stranded) this.warnStranded(q);
      for (const q of found.served) {
        this.log.info({ lane: q.lane, queue: q.queue, consumers: q.consumers }, 'a lane this config does not have is consumed by another process (a daemon with another config)');
      }
      if (found.gone.length > 0) this.log.info({ queues: found.gone }, 'queues of removed lanes were deleted; forgotten');
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not check for removed lanes whose queues still hold messages; starting anyway');
    }
  }

  private warnStranded(q: StrandedQueue): void {
    this.stranded.set(q.queue, q.lane);
    this.metrics.recordStranded(q.lane, q.queue, q.messages, q.consumers);
    // A re-partitioned lane's old queue goes back into the lane itself.
    const other = this.config.lanes.some((l) => l.name === q.lane) ? q.lane : (this.config.lanes[0]?.name ?? '<lane>');
    this.log.warn(
      { lane: q.lane, queue: q.queue, messages: q.messages },
      `lane "${q.lane}" is not in the config (removed, renamed or re-partitioned?) but its queue ${q.queue} holds ${q.messages} message(s) ` +
        `that nothing consumes, and keeps receiving the lane's messages: move them with \`orbit lanes move --from ${q.lane} --to ${other}\`, ` +
        `then delete the queue once empty; if a daemon with another config serves "${q.lane}", start it`,
    );
  }

  /**
   * On the ladder, finds the rungs other publishers declared (work-ahead and the queue
   * metrics look only into rungs known to exist): at start, then every `RUNG_DISCOVERY_MS`.
   */
  private discoverRungs(rungs: RungDeclarer): void {
    const candidates = ladderQueues(this.config);
    const round = (): void => {
      rungs.discover(candidates).catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'rung discovery failed; tried again later'));
    };
    round();
    this.discovery = setInterval(round, RUNG_DISCOVERY_MS);
    this.discovery.unref();
  }

  private async loadHandlers(): Promise<Map<string, Handler>> {
    const out = new Map<string, Handler>();
    for (const [i, lane] of this.config.lanes.entries()) out.set(lane.name, await this.handlerFor(lane, i));
    // Legal (a daemon can serve /metrics only), but almost always a config that did not load
    // the lanes the user meant: say so rather than run silently.
    if (this.config.lanes.length === 0) this.log.warn('no lanes configured: this daemon consumes nothing (set lanes in the config file)');
    return out;
  }

  private async handlerFor(lane: LaneConfig, index: number): Promise<Handler> {
    const given = this.options.handlers?.[lane.name];
    if (given) return given;
    if (lane.httpHandler) {
      const http = createHttpHandler(lane.httpHandler, lane.concurrency, `lanes[${index}].handler`);
      this.httpHandlers.push(http);
      return http.handle;
    }
    if (!lane.handler) throw new HandlerLoadError(`lanes[${index}].handler is required to run lane "${lane.name}"`);
    return loadHandler(lane.handler);
  }

  /**
   * Closes a connection; one the broker has not closed by `by` (ANSWER_MIN_MS at least) is
   * cut (logged), so the stop ends.
   */
  private async closeBounded(connection: AmqpConnectionManager | undefined, by: number): Promise<void> {
    if (connection) await closeConnection(connection, Math.max(ANSWER_MIN_MS, by - Date.now()), this.log);
  }

  private async doStop(): Promise<void> {
    const started = Date.now();
    const inFlight = this.inFlight;
    this.log.info({ inFlight }, 'orbit stopping');
    let drained = true;
    // The stop's budget, whatever the broker does (a hung node answers nothing and closes no
    // socket): handlers get `shutdown.timeout` from now, the consumer cancels included; then
    // every close together gets STOP_CLOSE_BUDGET_MS, after which the connections' sockets
    // are cut. Each close waiting out its own timeout instead made a stop on a hung broker
    // take 37 s past `shutdown.timeout` (test/faults/frozen-broker.test.ts), past the
    // supervisors' grace periods (docs/DEPLOY.md).
    const drainBy = started + this.config.shutdown.timeoutMs;
    let closeBy = Number.POSITIVE_INFINITY;
    const left = (by: number) => Math.max(0, by - Date.now());
    // A step marked `bounded` that is still waiting on the broker at the close deadline is left
    // to finish on its own (each ends once its connection is closed after it).
    const untilCloseBy = (name: string, work: () => Promise<unknown>) => async () => {
      if ((await answeredWithin(work(), left(closeBy))) === UNANSWERED) this.log.warn({ step: name }, 'shutdown step not finished by the close deadline; left to the connection close');
    };
    const bounded = true;
    const steps: ReadonlyArray<readonly [string, () => Promise<unknown>, boolean?]> = [
      ['stop work-ahead', async () => this.workAhead?.stopTaking()],
      // Before the lanes stop: what it holds is sent on for the rest of its delay, on time.
      ['stop rung holder', async () => this.rungHolder?.stopTaking(Math.max(ANSWER_MIN_MS, left(drainBy)))],
      ['stop consumer watch', async () => this.consumerWatch?.stop()],
      ['stop rung discovery', async () => clearInterval(this.discovery)],
      ['stop consuming', () => Promise.all(this.workers.map((w) => w.stopConsuming(Math.min(CHANNEL_CLOSE_TIMEOUT_MS, Math.max(ANSWER_MIN_MS, left(drainBy))))))],
      // Replacements of the handlers still running must not wait out a bundle's linger.
      ['stop bundle linger', async () => void this.publisher?.stopLingering()],
      [
        'drain in-flight handlers',
        async () => {
          const results = await Promise.all(this.workers.map((w) => w.drain(left(drainBy))));
          drained = results.every(Boolean);
          closeBy = Date.now() + STOP_CLOSE_BUDGET_MS;
        },
      ],
      ['stop queue sampling', async () => this.sampler?.stop(), bounded],
      ['stop unroutable return', async () => this.unroutableReturn?.stop(), bounded],
      ['stop broker memory watch', async () => this.memoryWatch?.stop(), bounded],
      ['close work-ahead channel', async () => this.workAhead?.close(), bounded],
      ['close rung holder channel', async () => this.rungHolder?.close(), bounded],
      ['close lane channels', () => Promise.all(this.workers.map((w) => w.close())), bounded],
      ['close tombstone follower', async () => this.follower?.close(), bounded],
      // A connection close bounds itself (at least ANSWER_MIN_MS, then its socket is cut).
      ['close consume connection', async () => this.closeBounded(this.consumeConnection, closeBy)],
      ['close publish channel', async () => this.publish?.channel.close(), bounded],
      ['close rung channel', async () => this.rungs?.close(), bounded],
      ['close publish connection', async () => this.closeBounded(this.publishConnection, closeBy)],
      ['close http', async () => this.http?.close()],
      ['close console', async () => this.ui?.close()],
      ['close handler connections', async () => this.httpHandlers.forEach((h) => h.close())],
    ];
    await runSteps(
      steps.map(([name, work, isBounded]) => [name, isBounded ? untilCloseBy(name, work) : work] as const),
      (step, err) => this.log.error({ step, err: errorMessage(err) }, 'shutdown step failed'),
      (step, ms) => {
        if (ms >= SLOW_STOP_STEP_MS) this.log.warn({ step, ms }, 'shutdown step slow');
        else this.log.debug({ step, ms }, 'shutdown step done');
      },
    );
    this.log.info(
      { ms: Date.now() - started, drained, leftUnacked: drained ? 0 : this.workers.reduce((n, w) => n + w.unsettled, 0) },
      drained ? 'orbit stopped' : 'orbit stopped; unfinished messages left for redelivery',
    );
  }
}
