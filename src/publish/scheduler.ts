import type { ConnectionRole } from '../amqp/connection';
import { BrokerSession } from './session';
import { BrokerError, InvalidMessageError } from '../errors';
import { loadConfig } from '../config/load';
import type { ConfigSources, LaneConfig, ResolvedConfig } from '../config/types';
import { createLogger, type Logger } from '../logging/logger';
import { rungIndex } from '../delay/ladder';
import { configLongestHopMs } from '../delay/waypoints';
import { encodeBody } from '../message/body';
import { nextGeneration } from '../message/generation';
import { NO_HEADERS, type Headers } from '../message/headers';
import type { OutgoingMessage, TimingOptions } from '../message/types';
import { names } from '../naming/names';
import type { Settle } from './bundler';
import { resolveId, resolveSchedule } from './schedule';

export interface SchedulerOptions extends ConfigSources {
  /** A resolved config; when absent one is loaded from the other fields (files, env). */
  readonly config?: ResolvedConfig;
  /** @defaultValue a JSON logger on stderr at the configured level */
  readonly logger?: Logger;
  /** Shown in the broker's connection name `orbit:<namespace>:<role>`. @defaultValue 'publish' */
  readonly role?: ConnectionRole;
  /** How long the first publish waits for the broker. @defaultValue 30 s */
  readonly connectTimeoutMs?: number;
}

/** Timing (`delay` or `at`, and `priority`, @defaultValue 0) plus the message's identity. */
export interface PublishMessageOptions extends TimingOptions {
  /** Stable id across reschedules. @defaultValue a new UUID */
  readonly id?: string;
  /** Picks the partition of a partitioned lane (kept across reschedules). @defaultValue the id */
  readonly key?: string;
  /** Extra AMQP headers carried with the message (`x-orbit-*` are orbit's own and ignored). */
  readonly headers?: Headers;
  /**
   * Supersede every copy of `id` published before this one (it needs an `id`): they are
   * dropped when they come due, this one runs (README, "Cancel and replace"). The cancel is
   * confirmed before the message is sent; if the send then fails, the id is cancelled until
   * a replace succeeds. @defaultValue false
   */
  readonly replace?: boolean;
}

/** What `cancel` did. */
export interface CancelResult {
  /** Ids whose cancel the broker confirmed. */
  readonly cancelled: number;
  /** The cancels' generation: copies published before it (epoch ms) are dropped. */
  readonly before: Date;
}

/** Cancels in flight at once (`cancel` with many ids). */
const CANCEL_WINDOW = 1000;

export interface PublishedMessage {
  readonly id: string;
  readonly lane: string;
  readonly dueAt: Date;
  /** The delay as requested, before rounding up to the unit. */
  readonly delayMs: number;
}

/**
 * The library API for putting messages into orbit:
 * ```ts
 * const scheduler = new Scheduler({ configFile: 'orbit.json' });
 * await scheduler.publish('fast', { url: 'https://…' }, { delay: '10m' });
 * await scheduler.close();
 * ```
 * Each `publish` resolves once the broker confirmed the message; it rejects with an
 * InvalidMessageError before sending anything the lanes or delay levels cannot take.
 */
export class Scheduler {
  readonly config: ResolvedConfig;
  private readonly lanes: ReadonlyMap<string, LaneConfig>;
  private readonly log: Logger;
  private connecting: Promise<BrokerSession> | undefined;
  /** The session once connected: the synchronous path of `sendWith`. */
  private session: BrokerSession | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: SchedulerOptions = {}) {
    this.config = options.config ?? loadConfig(options);
    this.lanes = new Map(this.config.lanes.map((l) => [l.name, l]));
    this.log = options.logger ?? createLogger(this.config.log.level, 2);
  }

  /** Validates without sending: what `publish` would send, or the error it would throw. */
  prepare(lane: string, body: unknown, options: PublishMessageOptions = {}, now = Date.now()): OutgoingMessage {
    const schedule = resolveSchedule({ lane, delay: options.delay, at: options.at, priority: options.priority }, {
      lanes: this.lanes,
      delay: this.config.delay,
      now,
    });
    return {
      id: resolveId(options.id),
      key: options.key === undefined ? undefined : resolveId(options.key, 'key'),
      lane: schedule.lane.name,
      body: encodeBody(body, schedule.lane.format),
      priority: schedule.priority,
      dueAt: schedule.dueAt,
      delayMs: schedule.delayMs,
      runs: 0,
      attempt: 0,
      generation: nextGeneration(now),
      headers: options.headers ?? NO_HEADERS,
    };
  }

  async publish(lane: string, body: unknown, options: PublishMessageOptions = {}): Promise<PublishedMessage> {
    if (options.replace && options.id === undefined) {
      throw new InvalidMessageError('replace needs the id of the message it replaces', { code: 'BAD_ID' });
    }
    const message = this.prepare(lane, body, options);
    // The cancel first: its generation is the new copy's, which it therefore spares.
    if (options.replace) {
      const session = await this.connect();
      await session.ensureTombstoneStream();
      await session.publisher.cancel(message.id, message.generation);
    }
    return this.send(message);
  }

  /**
   * Cancels ids: every copy of each published before now — in any delay queue, lane, bundle
   * or retry — is dropped when it comes due, by every daemon of the namespace, for
   * `cancel.retention`; a run in flight finishes and is not rescheduled. An unknown id is
   * accepted (and retired after the retention). A publish of the id after this resolves runs.
   * Resolves once the broker confirmed every cancel; on a failure, rejects with the first
   * error after the cancels in flight settle (cancelling again is harmless).
   */
  async cancel(ids: string | readonly string[]): Promise<CancelResult> {
    const list = typeof ids === 'string' ? [ids] : ids;
    // Every id checked before anything is sent (resolveId refuses what no message can carry).
    for (const id of list) resolveId(id ?? '');
    const session = await this.connect();
    await session.ensureTombstoneStream();
    const { publisher } = session;
    const before = nextGeneration();
    let cancelled = 0;
    for (let i = 0; i < list.length; i += CANCEL_WINDOW) {
      const results = await Promise.allSettled(list.slice(i, i + CANCEL_WINDOW).map((id) => publisher.cancel(id, before)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      cancelled += results.filter((r) => r.status === 'fulfilled').length;
      if (failed) throw failed.reason;
    }
    return { cancelled, before: new Date(before) };
  }

  /** Sends a message `prepare` returned; resolves once the broker confirmed it. */
  async send(message: OutgoingMessage): Promise<PublishedMessage> {
    const session = await this.connect();
    await session.publisher.schedule(message);
    return { id: message.id, lane: message.lane, dueAt: new Date(message.dueAt), delayMs: message.delayMs };
  }

  /**
   * `send` for bulk loaders (what `orbit seed` and `orbit publish --file` use): no promise
   * per message. `settle(token, ok, error)` is called once, never synchronously, when the
   * broker confirmed the message (or its bundle) or the publish failed. On a bundled lane
   * the message waits up to the lane's `linger` for company unless `flush` sends it sooner.
   */
  sendWith(message: OutgoingMessage, settle: Settle, token: number): void {
    const session = this.closing ? undefined : this.session;
    if (session) {
      try {
        session.publisher.scheduleWith(message, settle, token);
      } catch (err) {
        queueMicrotask(() => settle(token, false, err));
      }
      return;
    }
    this.send(message).then(
      () => settle(token, true),
      (err: unknown) => settle(token, false, err),
    );
  }

  /**
   * Sends open bundles before their linger is over, oldest first, until at most `keep`
   * logical messages are left waiting in them (0, the default: all). A bulk loader calls
   * this when it must wait for confirms, so bundles that will get no more company do not
   * hold it up. Does nothing before the first publish connected.
   */
  flush(keep = 0): void {
    this.session?.publisher.flush(keep);
  }

  /**
   * Declares, ahead of a bulk load, every ladder rung a delay of up to `longestDelayMs` can
   * wait in (the rungs of priorities below 5; a message of a higher one declares its rung
   * when first used, as ever). A quorum rung new to the broker waits before its first publish
   * (crash safety, `amqp/new-quorum-queue.ts`); declared here they wait once, together, not
   * one after another with the loader's window full. Resolves with the number declared; 0 on
   * the binary levels (`tolerance: 0`), which exist from the start. `lane`: whose ladder
   * (`lanes[].tolerance`); the namespace's without one.
   */
  async prepareRungs(longestDelayMs: number, lane?: string): Promise<number> {
    const session = await this.connect();
    const { unitMs } = this.config.delay;
    // Fitted to the broker's file handles first: a broker that cannot keep the configured
    // ladder open must not have all of its rungs declared at once.
    await session.ladderFitted;
    // The lane's ladder (`lanes[].tolerance`), else the namespace's.
    const units = session.publisher.ladderOf(lane).rungs;
    if (!session.rungs || !units) return 0;
    // The rungs below the longest delay and the one it rounds up to (or the top of the ladder);
    // a delay past the longest hop travels in hops (`delay/waypoints.ts`), which wait in rungs up to that.
    const longest = Math.min(longestDelayMs, configLongestHopMs(this.config));
    const last = rungIndex(units, Math.ceil(longest / unitMs));
    const n = names(this.config.namespace);
    const rungs = units.slice(0, last < 0 ? units.length : last + 1).map((u) => ({ queue: n.rung(u * unitMs), ttlMs: u * unitMs }));
    return session.rungs.prepare(rungs);
  }

  /** Connects and asserts the topology; `publish` does this on first use. */
  connect(): Promise<BrokerSession> {
    if (this.closing) return Promise.reject(new BrokerError('scheduler is closed', { code: 'CLOSED' }));
    this.connecting ??= BrokerSession.open(this.config, this.options.role ?? 'publish', this.log, this.options.connectTimeoutMs).then((session) => {
      this.session = session;
      return session;
    });
    return this.connecting;
  }

  /** Idempotent. Publishes already confirmed stay; nothing is buffered to lose. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const session = await this.connecting?.catch(() => undefined);
      // Messages still lingering in open bundles were accepted by publish/send: send them,
      // and let their confirms arrive, before the channel goes.
      await session?.publisher.stopLingering().catch(() => undefined);
      await session?.close();
    })();
    return this.closing;
  }
}
