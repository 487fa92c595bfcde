import type { Registry } from 'prom-client';
import type { ResolvedConfig } from '../../config/types';
import { DeadLetterQueue } from '../../dlq/dead-letter-queue';
import type { Logger } from '../../logging/logger';
import { names } from '../../naming/names';
import { BrokerSession } from '../../publish/session';
import { collectStats, type StatsSnapshot } from '../../stats/collect';
import { RateMeter, type LaneRates } from './rates';

/** Concurrent page loads within this long share one broker sample. */
const STATS_TTL_MS = 1000;

/**
 * The console's view of the broker: one session of its own (passive: it declares nothing and
 * refuses a namespace that does not exist), opened on first use and again after a failure;
 * every dead-letter operation and stats sample one at a time, so that no open page sees
 * another's held messages as gaps (or a depth without them); stats shared between close requests.
 */
export class BrokerView {
  private session: Promise<BrokerSession> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stats: { at: number; snapshot: Promise<StatsSnapshot> } | undefined;
  private readonly rates: RateMeter | undefined;
  /** The broker's reason while it blocks publishing connections (a memory or disk alarm). */
  private blocked: string | null = null;
  private closed = false;

  constructor(
    readonly config: ResolvedConfig,
    private readonly logger: Logger,
    registry: Registry | undefined,
  ) {
    this.rates = registry ? new RateMeter(registry) : undefined;
  }

  private open(): Promise<BrokerSession> {
    if (this.closed) return Promise.reject(new Error('console closed'));
    const n = names(this.config.namespace);
    this.session ??= BrokerSession.open(this.config, 'cli', this.logger, { topology: 'passive', inspect: [n.dead, n.unroutable] }).then(
      (session) => {
        session.connection.on('blocked', ({ reason }: { reason: string }) => (this.blocked = reason));
        session.connection.on('unblocked', () => (this.blocked = null));
        session.connection.on('disconnect', () => (this.blocked = null));
        return session;
      },
      (err: unknown) => {
        this.session = undefined;
        throw err;
      },
    );
    return this.session;
  }

  /** Connects now rather than at the first request: `orbit ui` reports a wrong broker or namespace at once. */
  async connect(): Promise<void> {
    await this.open();
  }

  /** Runs `fn` on the dead-letter queues, after every earlier one has finished. */
  deadLetters<T>(fn: (dlq: DeadLetterQueue) => Promise<T>): Promise<T> {
    return this.exclusive(async () => fn(new DeadLetterQueue(await this.open(), this.config.lanes)));
  }

  /**
   * Runs `fn` after every earlier one has finished. Stats go through here too: a depth read
   * while this console holds messages it is looking at would count them as gone.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async snapshot(now = Date.now()): Promise<StatsSnapshot> {
    if (!this.stats || now - this.stats.at >= STATS_TTL_MS) {
      const snapshot = this.exclusive(async () => collectStats(await this.open(), this.config, { channelTimeoutMs: 10_000 }));
      this.stats = { at: now, snapshot };
      snapshot.catch(() => (this.stats = undefined));
    }
    return this.stats.snapshot;
  }

  /** This daemon's lane rates; undefined without a daemon (`orbit ui`). */
  laneRates(): Promise<ReadonlyMap<string, LaneRates>> | undefined {
    return this.rates?.read();
  }

  /**
   * A broker alarm as the console can see it: its own connection blocked (the broker says
   * why), or, in a daemon, the daemon's connections blocked (as of the last rates reading).
   */
  alarm(): string | null {
    if (this.blocked !== null) return this.blocked;
    const daemon = this.rates?.blocked ?? [];
    return daemon.length > 0 ? `publishing blocked by the broker (memory or disk alarm): ${daemon.join(', ')} connection` : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    if (session) await session.then((s) => s.close()).catch(() => undefined);
  }
}
