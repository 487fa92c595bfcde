import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ConnectionEvents } from '../amqp/connection';
import type { LaneConfig } from '../config/types';
import type { PublishKind, PublishObserver } from '../publish/message-publisher';
import { CollectedCounts, type CountSeries } from './collected-counts';
import { FastHistogram, type HistogramSeries } from './fast-histogram';
import type { QueueDepth } from './queue-sampler';
import type { Settlement } from '../worker/decide-outcome';
import type { WorkerObserver } from '../worker/observer';
import type { CopyKind } from '../worker/recent-runs';

/** Handler work is mostly I/O: from a few ms to minutes. */
const HANDLER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Lateness matters relative to `delay.unit` (1 s by default) up to "badly behind" (hours). */
const LATENESS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 5, 10, 30, 60, 300, 900, 3600];
/**
 * Lateness as a share of what the message's bound allows: ≤ 1 kept its bound; above 1, by how
 * much it missed (a backlog: the lane lacks capacity). The buckets around 1 tell "used its
 * tolerance" from "missed it".
 */
const BOUND_RATIO_BUCKETS = [0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 5, 10, 100];
/** Work-ahead runs messages up to `maxAdvance` early: seconds to hours. */
const EARLINESS_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 86400];
const CONFIRM_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const PUBLISH_KINDS: readonly PublishKind[] = ['publish', 'reschedule', 'retry', 'dead', 'waypoint', 'forward'];
const COPY_KINDS: readonly CopyKind[] = ['exact', 'fork'];

/**
 * One lane's hot state, looked up once per hook. Counts and the in-flight level are plain
 * numbers, handed to prom-client when it collects (at every scrape; `CollectedCounts`): a
 * prom-client `inc()` hashes its labels each time, and these run several times per message —
 * tens of thousands of times a second on a bundled lane. The per-message histograms are
 * FastHistograms for the same reason.
 */
interface LaneSeries {
  /** What `LaneWorker.active` counts too: changed by the same two hooks. */
  inFlight: number;
  readonly settled: Record<Settlement['kind'], CountSeries<'lane' | 'outcome'>>;
  /** Logical messages work-ahead took early to run in this lane. */
  readonly takenEarly: CountSeries<'lane'>;
  readonly lateness: HistogramSeries;
  readonly boundRatio: HistogramSeries;
  readonly handler: HistogramSeries;
}

const OUTCOME: Record<Settlement['kind'], string> = { done: 'done', rescheduled: 'rescheduled', retried: 'retried', dead: 'dead' };

/**
 * Every orbit metric, on its own registry (so tests and embedders can run several daemons
 * in one process). Names follow Prometheus conventions; labels stay low-cardinality
 * (lane, queue, outcome, kind, connection — never a message id).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly messages: Counter<'lane' | 'outcome'> = new Counter({
    name: 'orbit_messages_total',
    help: 'Messages settled, by lane and outcome (done, rescheduled, retried, dead).',
    labelNames: ['lane', 'outcome'],
    registers: [this.registry],
    collect: () => this.settledCounts.collectInto(this.messages),
  });
  readonly handlerDuration = new FastHistogram({
    name: 'orbit_handler_duration_seconds',
    help: 'Handler run time.',
    labelName: 'lane',
    buckets: HANDLER_BUCKETS,
    registry: this.registry,
  });
  readonly lateness = new FastHistogram({
    name: 'orbit_lateness_seconds',
    help: 'Run start minus due time (0 when run early).',
    labelName: 'lane',
    buckets: LATENESS_BUCKETS,
    registry: this.registry,
  });
  readonly boundRatio = new FastHistogram({
    name: 'orbit_lateness_bound_ratio',
    help: 'Run start minus due time, as a share of the lateness its bound allows (τ × delay + unit + linger, as published); above 1: past its bound. Runs taken early, and messages published without a bound (an older orbit, another client), are not observed.',
    labelName: 'lane',
    buckets: BOUND_RATIO_BUCKETS,
    registry: this.registry,
  });
  readonly inFlight = new Gauge({
    name: 'orbit_in_flight',
    help: 'Messages whose handler runs or whose outcome is being settled.',
    labelNames: ['lane'],
    registers: [this.registry],
    collect: () => {
      for (const [lane, s] of this.laneSeries) this.inFlight.set({ lane }, s.inFlight);
    },
  });
  readonly concurrency = new Gauge({
    name: 'orbit_lane_concurrency',
    help: 'Configured concurrency (prefetch) of each lane.',
    labelNames: ['lane'],
    registers: [this.registry],
  });
  readonly queueMessages = new Gauge({
    name: 'orbit_queue_messages',
    help: 'Ready messages per queue, sampled with passive declares.',
    labelNames: ['queue', 'role'],
    registers: [this.registry],
  });
  readonly strandedMessages = new Gauge({
    name: 'orbit_stranded_messages',
    help: 'Messages in the queue of a lane the config no longer has and no process consumes (a removed lane), sampled with the queue depths: move them with `orbit lanes move`.',
    labelNames: ['lane', 'queue'],
    registers: [this.registry],
  });
  readonly queueDrift = new Gauge({
    name: 'orbit_queue_drift',
    help: 'Queues found with other arguments than orbit declares for this broker (1 each; severity ignored or risky): run `orbit migrate`.',
    labelNames: ['queue', 'argument', 'severity'],
    registers: [this.registry],
  });
  readonly published: Counter<'kind'> = new Counter({
    name: 'orbit_published_total',
    help: 'Messages published and confirmed by the broker, by kind.',
    labelNames: ['kind'],
    registers: [this.registry],
    collect: () => this.publishedCounts.collectInto(this.published),
  });
  readonly confirmSeconds = new FastHistogram({
    name: 'orbit_publish_confirm_seconds',
    help: 'Time from publish to broker confirm.',
    buckets: CONFIRM_BUCKETS,
    registry: this.registry,
  });
  readonly connected = new Gauge({
    name: 'orbit_amqp_connected',
    help: '1 while the named AMQP connection is up.',
    labelNames: ['connection'],
    registers: [this.registry],
  });
  readonly blocked = new Gauge({
    name: 'orbit_amqp_blocked',
    help: '1 while the broker blocks the connection (memory or disk alarm).',
    labelNames: ['connection'],
    registers: [this.registry],
  });
  readonly reconnects = new Counter({
    name: 'orbit_amqp_reconnects_total',
    help: 'Connections re-established after a loss.',
    labelNames: ['connection'],
    registers: [this.registry],
  });
  readonly workAhead: Counter<'lane'> = new Counter({
    name: 'orbit_work_ahead_total',
    // Logical messages: a bundle taken early counts each message it holds (as orbit_earliness_seconds does).
    help: 'Messages taken from the delay queues ahead of time by an idle lane, to run in this lane (each message of a bundle counts).',
    labelNames: ['lane'],
    registers: [this.registry],
    collect: () => this.takenEarlyCounts.collectInto(this.workAhead),
  });
  readonly held: Counter<'lane'> = new Counter({
    name: 'orbit_held_total',
    help: 'Messages the rung holder (delay.hold) held until due and ran from their rung, without a pass through the lane queue (each message of a bundle counts).',
    labelNames: ['lane'],
    registers: [this.registry],
  });
  readonly workAheadActive = new Gauge({
    name: 'orbit_work_ahead_active',
    help: '1 while this lane is working ahead: running messages early, taken from the delay queues while idle.',
    labelNames: ['lane'],
    registers: [this.registry],
  });
  readonly earliness = new Histogram({
    name: 'orbit_earliness_seconds',
    help: 'Due time minus run start, for messages run early by work-ahead.',
    labelNames: ['lane'],
    buckets: EARLINESS_BUCKETS,
    registers: [this.registry],
  });
  readonly bundleSize = new Histogram({
    name: 'orbit_bundle_size',
    help: 'Logical messages per delivery on bundled lanes.',
    labelNames: ['lane'],
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000],
    registers: [this.registry],
  });
  readonly cancelled = new Counter({
    name: 'orbit_cancelled_total',
    help: 'Copies of cancelled ids dropped instead of run or rescheduled (README, "Cancel and replace").',
    labelNames: ['lane'],
    registers: [this.registry],
  });
  readonly copiesDropped = new Counter({
    name: 'orbit_copies_dropped_total',
    help: 'Deliveries of runs this daemon had settled lately, dropped instead of run again; kind exact: the very message a broker crash brought back, fork: a second copy made when a channel closed (docs/RELIABILITY.md).',
    labelNames: ['lane', 'kind'],
    registers: [this.registry],
  });
  readonly consumerRestarts = new Counter({
    name: 'orbit_consumer_restarts_total',
    help: 'Lane consumers restarted because the broker delivered nothing while their queue held ready messages and the lane had room (docs/RELIABILITY.md).',
    labelNames: ['lane'],
    registers: [this.registry],
  });
  readonly rungDetours = new Counter({
    name: 'orbit_rung_detours_total',
    help: 'Publishes a ladder rung did not take (no answer, no confirm, or a nack), sent to the rung above instead, by the failure code (docs/RELIABILITY.md).',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly unroutableReturned = new Counter({
    name: 'orbit_unroutable_returned_total',
    help: "AMQP messages (a bundle counts once) the daemon sent from <ns>.unroutable back to their lanes: routed while a lane's binding was missing, as when a broker restarts (docs/RELIABILITY.md).",
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'orbit_rate_limited_seconds_total',
    help: "Time messages spent waiting for their lane's rate limit.",
    labelNames: ['lane'],
    registers: [this.registry],
  });
  readonly ready: Gauge;
  /** Per-lane hot state, shared by every worker observer (see LaneSeries). */
  private readonly laneSeries = new Map<string, LaneSeries>();
  /** Settled messages not yet added to `messages` (added when it is collected). */
  private readonly settledCounts = new CollectedCounts<'lane' | 'outcome'>();
  /** Messages taken early not yet added to `workAhead`. */
  private readonly takenEarlyCounts = new CollectedCounts<'lane'>();
  /** Confirmed publishes not yet added to `published`. */
  private readonly publishedCounts = new CollectedCounts<'kind'>();

  /** @param isReady read at every scrape, so `orbit_ready` always agrees with `/readyz`. */
  constructor(isReady: () => boolean = () => false) {
    this.ready = new Gauge({
      name: 'orbit_ready',
      help: '1 when connected, topology asserted and every lane consuming (as /readyz).',
      registers: [this.registry],
      collect() {
        this.set(isReady() ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'orbit_' });
  }

  /**
   * `orbit_ladder_tolerance{lane}`: the tolerance each lane's delay ladder keeps, read at every
   * scrape: the configured one, or a wider one while the broker cannot keep the configured
   * ladder's queues open (`publish/ladder-fit.ts`). Above `delay.tolerance`: raise the broker's
   * file-handle limit (docs/DEPLOY.md).
   */
  trackLadderTolerance(lanes: readonly string[], tolerance: (lane: string) => number): void {
    new Gauge({
      name: 'orbit_ladder_tolerance',
      help: "The tolerance (a fraction of its delay a message may run late) each lane's delay ladder keeps: delay.tolerance, or wider where the broker's file handles cannot keep the configured ladder open (docs/DEPLOY.md); 0 on the binary levels.",
      labelNames: ['lane'],
      registers: [this.registry],
      collect() {
        for (const lane of lanes) this.set({ lane }, tolerance(lane));
      },
    });
  }

  /** `orbit_tombstones`: the cancels this daemon holds, read at every scrape. */
  trackTombstones(held: () => number): void {
    new Gauge({
      name: 'orbit_tombstones',
      help: 'Cancels this daemon holds: ids whose older copies it drops (retired after cancel.retention).',
      registers: [this.registry],
      collect() {
        this.set(held());
      },
    });
  }

  /**
   * `orbit_publish_stalled_queue{queue}`: 1 for each queue whose publishes go on a channel of
   * their own after a first publish to it stalled the publish channel (ConfirmedPublisher),
   * read at every scrape. A healthy queue clears at its first confirm, in milliseconds, so a
   * series that stays is a queue that confirms nothing: a quorum rung without a leader.
   */
  trackStalledQueues(queues: () => readonly string[]): void {
    new Gauge({
      name: 'orbit_publish_stalled_queue',
      help: 'Queues whose publishes go on a channel of their own since a first publish to them stalled the publish channel (a quorum queue without a leader?).',
      labelNames: ['queue'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const queue of queues()) this.set({ queue }, 1);
      },
    });
  }

  /** Connection hooks for `openConnection`, keeping the connection gauges current. */
  connectionEvents(connection: 'consume' | 'publish'): ConnectionEvents {
    let connects = 0;
    this.reconnects.inc({ connection }, 0);
    this.connected.set({ connection }, 0);
    this.blocked.set({ connection }, 0);
    return {
      onConnect: () => {
        if (connects++ > 0) this.reconnects.inc({ connection });
        this.connected.set({ connection }, 1);
      },
      onDisconnect: () => {
        this.connected.set({ connection }, 0);
        this.blocked.set({ connection }, 0);
      },
      onBlocked: () => this.blocked.set({ connection }, 1),
      onUnblocked: () => this.blocked.set({ connection }, 0),
    };
  }

  /** Latest passive-declare sample of every queue. */
  recordQueueDepths(depths: readonly QueueDepth[]): void {
    for (const d of depths) this.queueMessages.set({ queue: d.queue, role: d.role }, d.messages);
  }

  /**
   * Latest sample of a removed lane's queue (`amqp/stranded-lanes.ts`); 0 while a process
   * consumes it (a daemon with another config serves the lane).
   */
  recordStranded(lane: string, queue: string, messages: number, consumers = 0): void {
    this.strandedMessages.set({ lane, queue }, consumers > 0 ? 0 : messages);
  }

  /** A removed lane's queue is gone (deleted by the user): its series goes too. */
  forgetStranded(lane: string, queue: string): void {
    this.strandedMessages.remove({ lane, queue });
  }

  /**
   * Creates every labelled series at 0 up front. prom-client only creates a series on its
   * first increment, so without this a burst that ends between two scrapes after a restart
   * first appears at its final value: `rate()` and `increase()` would never see it.
   */
  initLanes(lanes: readonly Pick<LaneConfig, 'name' | 'concurrency' | 'rateLimit'>[]): void {
    for (const lane of lanes) {
      for (const outcome of Object.values(OUTCOME)) this.messages.inc({ lane: lane.name, outcome }, 0);
      this.concurrency.set({ lane: lane.name }, lane.concurrency);
      this.inFlight.set({ lane: lane.name }, 0);
      this.workAhead.inc({ lane: lane.name }, 0);
      this.workAheadActive.set({ lane: lane.name }, 0);
      this.lateness.labels(lane.name);
      this.boundRatio.labels(lane.name);
      this.handlerDuration.labels(lane.name);
      if (lane.rateLimit) this.rateLimited.inc({ lane: lane.name }, 0);
      this.cancelled.inc({ lane: lane.name }, 0);
      for (const kind of COPY_KINDS) this.copiesDropped.inc({ lane: lane.name, kind }, 0);
      this.consumerRestarts.inc({ lane: lane.name }, 0);
    }
    for (const kind of PUBLISH_KINDS) this.published.inc({ kind }, 0);
  }

  /** The worker's hooks (lane workers' and work-ahead's), counted here. */
  workerObserver(): WorkerObserver {
    const of = (lane: string): LaneSeries => this.seriesOf(lane);
    return {
      handlerStarted: (lane, latenessMs, early, allowedMs) => {
        const s = of(lane);
        s.inFlight++;
        s.lateness.observe(Math.max(0, latenessMs) / 1000);
        if (early) this.earliness.observe({ lane }, Math.max(0, -latenessMs) / 1000);
        else if (allowedMs !== undefined && allowedMs > 0) s.boundRatio.observe(Math.max(0, latenessMs) / allowedMs);
      },
      deliveryDecoded: (lane, messages) => this.bundleSize.observe({ lane }, messages),
      rateLimited: (lane, waitedMs) => this.rateLimited.inc({ lane }, waitedMs / 1000),
      handlerFinished: (lane, handlerMs) => of(lane).handler.observe(handlerMs / 1000),
      messageSettled: (lane, kind) => of(lane).settled[kind].inc(),
      messageReleased: (lane) => of(lane).inFlight--,
      messageCancelled: (lane) => this.cancelled.inc({ lane }),
      copyDropped: (lane, kind) => this.copiesDropped.inc({ lane, kind }),
      takenEarly: (lane, messages) => of(lane).takenEarly.inc(messages),
      heldRun: (lane, messages) => this.held.inc({ lane }, messages),
      workingAhead: (lane, active) => this.workAheadActive.set({ lane }, active ? 1 : 0),
      consumerRestarted: (lane) => this.consumerRestarts.inc({ lane }),
    };
  }

  publishObserver(): PublishObserver {
    const counts = this.publishedCounts;
    const pending = Object.fromEntries(PUBLISH_KINDS.map((kind) => [kind, counts.series({ kind })])) as Record<PublishKind, CountSeries<'kind'>>;
    // The unlabelled series, held once: `observe` on the histogram would look it up per publish.
    const confirm = this.confirmSeconds.labels();
    return {
      published: (kind, seconds) => {
        pending[kind].inc();
        confirm.observe(seconds);
      },
      detoured: (_from, _to, code) => this.rungDetours.inc({ code }),
    };
  }

  /** A lane's hot state, created on its first use. */
  private seriesOf(lane: string): LaneSeries {
    let s = this.laneSeries.get(lane);
    if (!s) {
      const settled = (kind: Settlement['kind']): CountSeries<'lane' | 'outcome'> => this.settledCounts.series({ lane, outcome: OUTCOME[kind] });
      s = {
        inFlight: 0,
        settled: { done: settled('done'), rescheduled: settled('rescheduled'), retried: settled('retried'), dead: settled('dead') },
        takenEarly: this.takenEarlyCounts.series({ lane }),
        lateness: this.lateness.labels(lane),
        boundRatio: this.boundRatio.labels(lane),
        handler: this.handlerDuration.labels(lane),
      };
      this.laneSeries.set(lane, s);
    }
    return s;
  }
}
