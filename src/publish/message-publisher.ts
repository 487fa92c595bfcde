import { CONFIRM_TIMEOUT, NACKED, type ConfirmedPublisher } from '../amqp/confirmed-publisher';
import { RUNG_UNANSWERED } from '../amqp/rung-declarer';
import type { DelayConfig, LaneConfig } from '../config/types';
import type { LadderFit } from '../topology/broker-capacity';
import { allowedLatenessMs, holdMs, rungIndex } from '../delay/ladder';
import { delayOfLane, delayUntil, destinationOf, ladderOf, routeDelay, type DelayRoute } from '../delay/routing';
import { isOrbitError, PublishError } from '../errors';
import { headersOf, HEADER, readState, withoutBrokerHeaders, writeState } from '../message/headers';
import { CANCEL_BEFORE_HEADER } from '../message/tombstone-message';
import type { DeadLetterInfo, OutgoingMessage, StoredMessage } from '../message/types';
import type { Logger } from '../logging/logger';
import type { Names } from '../naming/names';
import { Bundler, type BundleRoute, type Settle } from './bundler';
import { destinationFor } from '../naming/partition';

/**
 * What a publish was for; the label of `orbit_published_total`. `waypoint`: a long delay's
 * next hop, sent on by its lane without a run (`delay/waypoints.ts`). `forward`: a copy
 * work-ahead fetched from a quorum delay queue and could not run, sent on for the rest of
 * its delay (`forward`).
 */
export type PublishKind = 'publish' | 'reschedule' | 'retry' | 'dead' | 'waypoint' | 'forward';

/** Told of every confirmed publish; metrics listen here so this module stays metric-free. */
export interface PublishObserver {
  published(kind: PublishKind, confirmSeconds: number): void;
  /** A publish to rung `from` failed with `code` and goes to the rung above, `to` (`send`). */
  detoured?(from: string, to: string, code: string): void;
}

/**
 * Makes sure a ladder rung exists before a publish to it (`amqp/rung-declarer.ts`):
 * undefined when it is known to, else a promise settled once it is declared.
 */
export interface RungEnsurer {
  ensure(queue: string, ttlMs: number): Promise<void> | undefined;
  /** A publish to `queue` was unroutable: declare it again before the next. */
  forget(queue: string): void;
}


/** A message as fetched from a delay queue: what `forward` needs of it. */
export interface FetchedCopy {
  readonly content: Buffer;
  readonly fields: { readonly routingKey: string };
  readonly properties: { readonly headers?: unknown; readonly messageId?: unknown; readonly priority?: number | undefined };
}

/** Rungs above a sick one a message may try before its publish fails (each new sick one costs `amqp.publishTimeout`). */
const MAX_RUNG_DETOURS = 3;

/** A message's route, as the publisher keeps it (the bundler groups by exchange and key). */
interface Route extends BundleRoute {
  readonly units: number;
  readonly destination: string;
  readonly priority: number;
  readonly cc: readonly string[] | undefined;
  readonly rung: DelayRoute['rung'];
  /** The delay the route applies (the rung's TTL on the ladder). */
  readonly delayMs: number;
  /** The tolerance of the ladder it is on (its lane's, or what a ladder thinned to the broker keeps); 0 on the binary levels. */
  readonly tolerance: number;
  /** The rungs (units) of the ladder it is on; undefined on the binary levels. */
  readonly ladder: readonly number[] | undefined;
}

/**
 * A lane's ladder: its delay settings, whose tolerance is the one its rungs keep, and the
 * rungs themselves (units; undefined on the binary levels). The configured ladder, or one
 * thinned to a broker that cannot keep it open (`fitLadders`).
 */
interface LaneLadder {
  readonly delay: DelayConfig;
  readonly rungs: readonly number[] | undefined;
}

const EMPTY = Buffer.alloc(0);

/** Longest error text kept in a dead letter's headers: enough to debug, never a huge frame. */
export const MAX_ERROR_HEADER_BYTES = 1024;

/** The configured ladder of a lane's delay settings (none on the binary levels). */
function ladderOfDelay(delay: DelayConfig): LaneLadder {
  return { delay, rungs: delay.tolerance > 0 ? ladderOf(delay.tolerance, delay.levels) : undefined };
}

/** What a `MessagePublisher` takes besides its channel, names, delay settings, lanes and rungs. */
export interface MessagePublisherOptions {
  /** Told of every publish and detour (the daemon's metrics). */
  readonly observer?: PublishObserver;
  /**
   * The longest a message waits in the delay path in one go (`delay/waypoints.ts`): a longer
   * delay is sent in hops, so every copy meets a lane while a cancel of it is remembered.
   * @defaultValue Infinity (no hops: for callers that never cancel, such as the benchmarks' raw stages)
   */
  readonly longestHopMs?: number;
  /** Where a rung detour is logged (debug). @defaultValue none */
  readonly logger?: Logger;
}

/**
 * Logical messages in, AMQP messages out (one each, or many per bundle on a bundled lane).
 * Every method resolves (or settles) only after the broker confirmed.
 */
export class MessagePublisher {
  private readonly observer: PublishObserver | undefined;
  private readonly logger: Logger | undefined;
  private readonly lanes: ReadonlyMap<string, LaneConfig>;
  /** Each lane's ladder: the namespace's delay settings with the lane's tolerance (`lanes[].tolerance`). */
  private laneLadders: ReadonlyMap<string, LaneLadder>;
  /** The namespace's ladder, for a lane the config does not have. */
  private ladder: LaneLadder;
  private longestHopMs: number;
  private readonly bundler: Bundler<Route, PublishKind>;
  private lastRoute: Route | undefined;

  constructor(
    private readonly publisher: ConfirmedPublisher,
    private readonly names: Names,
    private readonly delay: DelayConfig,
    lanes: readonly LaneConfig[],
    /** Declares ladder rungs on first use; needed when `delay.tolerance` > 0. */
    private readonly rungs: RungEnsurer | undefined,
    options: MessagePublisherOptions = {},
  ) {
    this.observer = options.observer;
    this.longestHopMs = options.longestHopMs ?? Infinity;
    this.logger = options.logger;
    this.lanes = new Map(lanes.map((l) => [l.name, l]));
    this.ladder = ladderOfDelay(delay);
    this.laneLadders = new Map(lanes.map((l) => [l.name, ladderOfDelay(delayOfLane(delay, l))]));
    const observer = this.observer;
    this.bundler = new Bundler<Route, PublishKind>(
      (route, body, options) => this.send(route, body, options),
      (route, msg) => this.publishAlone(msg, route),
      (msg) => this.allowedOf(msg),
      observer ? (kind, seconds) => observer.published(kind, seconds) : undefined,
    );
  }

  /**
   * Routes every later message on ladders fitted to the broker (`topology/broker-capacity.ts`,
   * `fitLadders`), or back on the configured ones (`undefined`). `longestHopMs` follows the
   * tolerance the fitted ladders keep (`delay/waypoints.ts`): a wider one makes a hop's copy
   * wait longer, so the hop gets shorter.
   */
  fitLadders(fit: LadderFit | undefined, longestHopMs: number): void {
    const ladderOfLane = (delay: DelayConfig): LaneLadder => {
      const rungs = delay.tolerance > 0 ? fit?.ladders.get(delay.tolerance) : undefined;
      return rungs ? { delay: { ...delay, tolerance: fit!.tolerances.get(delay.tolerance)! }, rungs } : ladderOfDelay(delay);
    };
    this.ladder = ladderOfLane(this.delay);
    this.laneLadders = new Map([...this.lanes.values()].map((l) => [l.name, ladderOfLane(delayOfLane(this.delay, l))]));
    this.longestHopMs = longestHopMs;
    this.lastRoute = undefined;
  }

  /** The ladder a lane's messages are routed on: the tolerance its rungs keep, and the rungs (units; undefined on the binary levels). */
  ladderOf(lane: string | undefined): { readonly tolerance: number; readonly rungs: readonly number[] | undefined } {
    const { delay, rungs } = (lane !== undefined ? this.laneLadders.get(lane) : undefined) ?? this.ladder;
    return { tolerance: delay.tolerance, rungs };
  }

  /**
   * Sends a message through the delay levels (or straight to deliver) to its lane. On a
   * bundled lane a `publish` (a caller awaiting this promise: a `Scheduler`, a dead letter's
   * replay, a lane move) waits one timer turn for company, not the lane's linger: what is
   * published together still shares bundles, and a lone publish is confirmed as soon as an
   * unbundled one. The daemon's replacements wait what their bound leaves (`holdOf`): their
   * delivery is held unacked meanwhile, and nobody awaits them.
   */
  schedule(msg: OutgoingMessage, kind: Exclude<PublishKind, 'dead'> = 'publish'): Promise<void> {
    if (msg.delayMs > this.longestHopMs) return this.observed(kind, this.publishHop(msg));
    const lane = this.lanes.get(msg.lane);
    const route = this.route(msg, lane);
    const bundle = bundleFor(msg, lane);
    if (bundle) {
      // One promise per logical message, settled by the bundle's confirm (the daemon's
      // replacements use `scheduleWith`: no promise each).
      return new Promise<void>((resolve, reject) =>
        this.bundler.addWith(msg, route, bundle, (_token, ok, err) => (ok ? resolve() : reject(err)), 0, kind === 'publish' ? 0 : this.holdOf(msg, route, bundle), kind),
      );
    }
    return this.observed(kind, this.publishAlone(msg, route));
  }

  /**
   * `schedule` for bulk loaders: no promise per message. `settle(token, ok, error)` is
   * called once the message (or its bundle) is confirmed or failed — never synchronously.
   * Throws what `schedule` would reject with before sending (a delay out of range).
   */
  scheduleWith(msg: OutgoingMessage, settle: Settle, token: number, kind: Exclude<PublishKind, 'dead'> = 'publish'): void {
    const lane = this.lanes.get(msg.lane);
    const hop = msg.delayMs > this.longestHopMs;
    // Validates the whole delay (one past the maximum throws) before a hop shortens it.
    const route = this.route(msg, lane);
    const bundle = hop ? undefined : bundleFor(msg, lane);
    if (bundle) {
      // The bundler tells the observer (no wrapper per message: it would be held while the message lingers).
      this.bundler.addWith(msg, route, bundle, settle, token, this.holdOf(msg, route, bundle), kind);
      return;
    }
    const observer = this.observer;
    let done = settle;
    if (observer) {
      const started = performance.now();
      done = (t, ok, err) => {
        if (ok) observer.published(kind, (performance.now() - started) / 1000);
        settle(t, ok, err);
      };
    }
    (hop ? this.publishHop(msg) : this.publishAlone(msg, route)).then(
      () => done(token, true),
      (err: unknown) => done(token, false, err),
    );
  }

  /** Logical messages waiting in open bundles (not yet sent). */
  get lingering(): number {
    return this.bundler.lingering;
  }

  /**
   * Sends open bundles before their linger is over, oldest first, until at most `keep`
   * logical messages are left waiting (0: all of them).
   */
  flush(keep = 0): void {
    this.bundler.flushOldest(keep);
  }

  /**
   * Closing: sends what waits in open bundles and stops lingering from now on; resolves
   * once every bundle sent is confirmed or failed (each caller learns which from its own
   * publish).
   */
  async stopLingering(): Promise<void> {
    this.bundler.stopLingering();
    await this.bundler.settled();
  }

  /**
   * The route of a message. Consecutive messages with the same destination and delay in
   * units (a bulk load in due-time order, a handler rescheduling "in an hour") reuse the last
   * route instead of working it out again.
   */
  private route(msg: OutgoingMessage, lane: LaneConfig | undefined): Route {
    const destination = lane ? destinationFor(lane, msg.key ?? msg.id) : msg.lane;
    const units = msg.delayMs >= 0 ? Math.ceil(msg.delayMs / this.delay.unitMs) : NaN;
    const last = this.lastRoute;
    if (last && last.units === units && last.destination === destination && last.priority === msg.priority) return last;
    // Validates (a delay out of range throws) whenever the route is new.
    const { delay, rungs } = (lane && this.laneLadders.get(lane.name)) ?? this.ladder;
    const r = routeDelay(msg.delayMs, destination, delay, this.names, msg.priority, rungs);
    this.lastRoute = { units, destination, priority: msg.priority, exchange: r.exchange, routingKey: r.routingKey, cc: r.cc, rung: r.rung, delayMs: r.delayMs, tolerance: delay.tolerance, ladder: rungs };
    return this.lastRoute;
  }

  /**
   * How long a bundled message may wait for company: the lane's linger, or on the ladder what
   * its tolerance leaves after rounding up to the rung, so it still runs within its bound.
   */
  private holdOf(msg: OutgoingMessage, route: Route, bundle: LaneConfig['bundle']): number {
    const { tolerance } = route;
    if (tolerance <= 0 || route.rung === undefined) return bundle.lingerMs;
    return holdMs(msg.delayMs, route.delayMs, tolerance, this.delay.unitMs, bundle.lingerMs);
  }

  /**
   * How late `msg` may run after its due time (the bound it is published with, README "The
   * bound"): `τ × delay + unit` (τ its lane's), plus the lane's linger when the lane bundles.
   */
  private allowedOf(msg: OutgoingMessage): number {
    const lane = this.lanes.get(msg.lane);
    const lingerMs = lane && lane.bundle.max > 1 ? lane.bundle.lingerMs : 0;
    const { tolerance, unitMs } = (this.laneLadders.get(msg.lane) ?? this.ladder).delay;
    return allowedLatenessMs(Math.max(0, msg.delayMs), tolerance, unitMs, lingerMs);
  }

  private publishAlone(msg: OutgoingMessage, route: Route): Promise<void> {
    const headers = writeState(msg.headers, msg);
    headers[HEADER.allowed] = this.allowedOf(msg);
    return this.send(route, msg.body, { messageId: msg.id, priority: msg.priority, headers });
  }

  /**
   * The first hop of a delay longer than `longestHopMs`: alone (its lane sends it on, it
   * cannot share a bundle with messages that run there), marked as a waypoint, carrying its
   * final due time. Throws, as `schedule` does, for a delay past the maximum.
   */
  private publishHop(msg: OutgoingMessage): Promise<void> {
    const lane = this.lanes.get(msg.lane);
    this.route(msg, lane);
    const route = this.route({ ...msg, delayMs: this.longestHopMs }, lane);
    const headers = writeState(msg.headers, msg);
    headers[HEADER.waypoint] = 1;
    return this.send(route, msg.body, { messageId: msg.id, priority: msg.priority, headers });
  }

  /**
   * Publishes to a route: declares its rung first when it has to, and adds its `CC` keys.
   *
   * A rung whose declare the broker does not answer, or that leaves a publish unconfirmed (a
   * quorum rung that came back from a broker crash without a leader: docs/RELIABILITY.md),
   * would otherwise fail every message meant for it, for as long as it stays sick, and their
   * originals would wait unacked. So such a message takes the next rung up (up to
   * `MAX_RUNG_DETOURS` of them): it runs later by one rung step (max(unit, τ/2 × delay)), and
   * nothing waits on the sick queue for longer than `amqp.publishTimeout`.
   *
   * Such a rung may answer its declare at once and never confirm (measured on 4.0.5: no
   * confirm in 20 s). It is not marked sick for the next messages: in one CI run on 4.0
   * healthy rungs stopped confirming too, held behind the sick rung on a stalled channel, and
   * a mark sent their messages up until the detours ran out. The publisher now takes such a
   * stall apart (`amqp/confirmed-publisher.ts`): what reaches this code is the sick rung's own
   * `CONFIRM_TIMEOUT`.
   */
  private send(route: Route, body: Buffer, options: { messageId: string; priority: number; headers: Record<string, unknown> }, detours = 0): Promise<void> {
    const sent = this.sendTo(route, body, options);
    if (route.rung === undefined || detours >= MAX_RUNG_DETOURS) return sent;
    return sent.catch((err: unknown) => {
      const code = isOrbitError(err) ? err.code : undefined;
      // A rung that does not answer, does not confirm, or refuses (a nack: seen on 3.10.8 from a
      // quorum rung for half a minute after a cluster node died, on a live channel;
      // docs/RELIABILITY.md). A closed channel is not detoured:
      // whether to publish again is the caller's decision (its delivery may be gone with it).
      const above = code === RUNG_UNANSWERED || code === CONFIRM_TIMEOUT || code === NACKED ? this.rungAbove(route) : undefined;
      if (!above) throw err;
      // At debug: one line per message while a rung is sick (thousands a second at worst);
      // the metric (orbit_rung_detours_total) is what shows it in production.
      this.logger?.debug({ from: route.rung!.queue, to: above.rung!.queue, code }, 'rung did not take a publish; sent to the rung above');
      this.observer?.detoured?.(route.rung!.queue, above.rung!.queue, code!);
      return this.send(above, body, options, detours + 1);
    });
  }

  /** The same route one rung further up the ladder (the same kind of rung); undefined at the top. */
  private rungAbove(route: Route): Route | undefined {
    const rung = route.rung!;
    const { unitMs } = this.delay;
    const ladder = route.ladder!;
    const i = rungIndex(ladder, Math.round(rung.ttlMs / unitMs));
    if (i < 0 || i + 1 >= ladder.length) return undefined;
    const ttlMs = ladder[i + 1]! * unitMs;
    const high = rung.queue !== this.names.rung(rung.ttlMs, false);
    const queue = this.names.rung(ttlMs, high);
    return { ...route, routingKey: queue, rung: { queue, ttlMs }, delayMs: ttlMs };
  }

  private sendTo(route: Route, body: Buffer, options: { messageId: string; priority: number; headers: Record<string, unknown> }): Promise<void> {
    const rung = route.rung;
    if (rung === undefined) return this.publisher.publish(route.exchange, route.routingKey, body, options);
    if (!this.rungs) return Promise.reject(new PublishError(`no rung declarer for ${rung.queue}`, { code: 'NOT_CONNECTED' }));
    const publish = (): Promise<void> =>
      this.publisher.publish(route.exchange, route.routingKey, body, { ...options, CC: route.cc as string[] }).catch((err: unknown) => {
        // The rung was deleted under us (by hand, or it expired): declare it before the next.
        if (err instanceof PublishError && err.code === 'UNROUTABLE') this.rungs?.forget(rung.queue);
        throw err;
      });
    const ready = this.rungs.ensure(rung.queue, rung.ttlMs);
    return ready ? ready.then(publish) : publish();
  }

  /**
   * Sends a copy of a message fetched from a delay queue on for the rest of its delay, to the
   * destination it was going to: the `CC` key on the ladder, the routing key on the binary
   * levels. Work-ahead's hand-back on quorum delay queues, which put a returned message at
   * their end, where it would expire late (`worker/work-ahead.ts`). Late by at most the
   * rounding of the rest, so within the message's bound. Resolves once confirmed.
   */
  forward(copy: FetchedCopy, now = Date.now()): Promise<void> {
    const headers = headersOf(copy);
    const cc = Array.isArray(headers.CC) ? headers.CC.find((k): k is string => typeof k === 'string') : undefined;
    const destination = (cc === undefined ? undefined : this.names.destinationOfKey(cc)) ?? destinationOf(copy.fields.routingKey, this.delay.levels);
    const priority = copy.properties.priority ?? 0;
    const state = readState(headers, now);
    // The rest of its delay, on its lane's ladder (the lane its headers name).
    const { delay, rungs } = (state.lane !== undefined && this.laneLadders.get(state.lane)) || this.ladder;
    const route = routeDelay(delayUntil(state.dueAt, now), destination, delay, this.names, priority, rungs);
    const messageId = typeof copy.properties.messageId === 'string' ? copy.properties.messageId : '';
    const sent = this.send({ exchange: route.exchange, routingKey: route.routingKey, cc: route.cc, rung: route.rung, delayMs: route.delayMs, units: NaN, destination, priority, tolerance: delay.tolerance, ladder: rungs }, copy.content, { messageId, priority, headers: withoutBrokerHeaders(headers) });
    return this.observed('forward', sent);
  }

  /** Keeps the message as it was delivered, plus headers that say why it died. */
  deadLetter(msg: StoredMessage, info: DeadLetterInfo, now: number): Promise<void> {
    return this.observed('dead', this.publisher.publish('', this.names.dead, msg.body, {
      messageId: msg.id,
      priority: msg.priority,
      contentType: msg.contentType,
      headers: {
        ...msg.headers,
        [HEADER.errorCode]: info.code,
        [HEADER.errorMessage]: truncateUtf8(info.message, MAX_ERROR_HEADER_BYTES),
        [HEADER.deadLane]: info.lane,
        [HEADER.deadAttempts]: info.attempts,
        [HEADER.deadAt]: now,
      },
    }));
  }

  /**
   * Writes a cancel of `id` to the tombstone stream: every daemon drops the copies of `id`
   * whose generation is below `before` (README, "Cancel and replace"). Resolves once confirmed.
   */
  cancel(id: string, before: number): Promise<void> {
    return this.publisher.publish('', this.names.tombstones, EMPTY, { messageId: id, headers: { [CANCEL_BEFORE_HEADER]: before } });
  }

  private observed(kind: PublishKind, confirmed: Promise<void>): Promise<void> {
    const observer = this.observer;
    if (!observer) return confirmed;
    const started = performance.now();
    return confirmed.then(() => observer.published(kind, (performance.now() - started) / 1000));
  }
}

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  // A limit too small for the marker gets a bare cut: never more than `maxBytes`.
  const suffix = maxBytes >= Buffer.byteLength('…[truncated]') ? '…[truncated]' : '';
  let end = Math.max(0, maxBytes - Buffer.byteLength(suffix));
  // Back off continuation bytes (10xxxxxx) so the cut falls on a character boundary.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8') + suffix;
}

/**
 * The lane's bundle settings when `msg` travels in a bundle: the lane bundles, and the
 * message has no headers of its own (bundles carry none per message, so such a message
 * travels alone).
 */
function bundleFor(msg: OutgoingMessage, lane: LaneConfig | undefined): LaneConfig['bundle'] | undefined {
  return lane && lane.bundle.max > 1 && !hasKeys(msg.headers) ? lane.bundle : undefined;
}

/** Whether an object has any own enumerable key (without building the array of them). */
function hasKeys(obj: object): boolean {
  for (const key in obj) if (Object.prototype.hasOwnProperty.call(obj, key)) return true;
  return false;
}
