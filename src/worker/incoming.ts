import type { Message as AmqpMessage } from 'amqplib';
import type { LaneConfig } from '../config/types';
import { BadBodyError, errorMessage } from '../errors';
import { allowanceOf, BUNDLE_HEADER, decodeBundle, type BundleEntry } from '../message/bundle';
import { HEADER, headersOf, type Headers, type MessageState, messageIdOf, NO_HEADERS, readState, userHeaders, withoutBrokerHeaders, writeState } from '../message/headers';
import type { StoredMessage } from '../message/types';
import type { DecisionInput } from './decide-outcome';
import type { Message } from './handler-types';
import { runKey } from './recent-runs';

/** One logical message taken from a delivery: what the handler sees, and what settling needs. */
export interface IncomingMessage {
  readonly message: Message;
  readonly decision: DecisionInput;
  readonly stored: StoredMessage;
  /** Set when the lane's `format` check fails: the handler must not run. */
  readonly badBody: BadBodyError | undefined;
  /** When the message was first published (0: unknown): what a cancel of its id compares. */
  readonly generation: number;
  /** Its due time, epoch ms (`message.dueAt` as a number, without making the Date). */
  readonly dueAtMs: number;
  /** A hop of a long delay (`delay/waypoints.ts`): sent on for the rest of its delay, not run. */
  readonly waypoint: boolean;
  /** How late it may run after its due time, as its publisher promised (`HEADER.allowed`); undefined when not said. */
  readonly allowedMs: number | undefined;
  /** This run's name for `RecentRuns` (`runKey`), made once, when first read; undefined when it has none. */
  readonly runKey: string | undefined;
}

/**
 * Decodes a delivery into its logical messages: one for a plain message, many for a
 * bundle. The worker settles each on its own and acks the delivery when all of them are.
 * A bundle that does not decode becomes one message failing with BAD_BODY, kept whole.
 */
export function decodeDelivery(raw: AmqpMessage, lane: LaneConfig, now: number, early = false): IncomingMessage[] {
  const headers = headersOf(raw);
  const priority = typeof raw.properties.priority === 'number' ? Math.min(raw.properties.priority, lane.maxPriority) : 0;
  const contentType = typeof raw.properties.contentType === 'string' ? raw.properties.contentType : undefined;
  const redelivered = raw.fields.redelivered;
  const id = messageIdOf(raw.properties.messageId);

  const version = headers[BUNDLE_HEADER];
  if (version !== undefined) {
    let entries: BundleEntry[];
    try {
      entries = decodeBundle(raw.content, version);
    } catch (err) {
      const state = readState(headers, now);
      const bad = err instanceof BadBodyError ? err : new BadBodyError(String(err));
      return [new Logical(id, lane, raw.content, priority, state, headers, early, redelivered, contentType, bad)];
    }
    const out = new Array<IncomingMessage>(entries.length);
    const allowed = headers[HEADER.allowed];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const allowedMs = allowanceOf(allowed, entries.length, i);
      const state: MessageState = { dueAt: e.dueAt, runs: e.runs, attempt: e.attempt, lane: lane.name, key: e.key, generation: e.generation, allowedMs };
      // No headers: a bundle carries none per message (a message with headers of its own is
      // never bundled); the handler and a dead letter see what a plain message would carry,
      // made on first read.
      out[i] = new Logical(e.id, lane, e.body, priority, state, undefined, early, redelivered, undefined, undefined);
    }
    return out;
  }
  return [new Logical(id, lane, raw.content, priority, readState(headers, now), headers, early, redelivered, contentType, undefined)];
}

/**
 * One logical message: the handler's `Message` and what settling needs, in one object.
 * A class, not an object literal with getters and closures: a daemon on a bundled lane makes
 * tens of thousands of these a second, and per-object accessors and closures showed up in
 * the profile (docs/BENCHMARKS.md, "Session 3: the bundled hot path"). What the handler sees is `message` (this
 * object); its public fields and getters are the `Message` interface, the rest is private.
 */
class Logical implements Message, IncomingMessage {
  readonly lane: string;
  readonly runs: number;
  readonly attempt: number;
  /** Due time, epoch ms (what the worker reads; the handler's `dueAt` is made from it when first read). */
  readonly dueAtMs: number;
  #dueAt: Date | undefined;
  /** null: not made yet (undefined is a made answer: no key). */
  #runKey: string | undefined | null = null;
  readonly #lane: LaneConfig;
  // The state's fields, not the state object: one object fewer per message a bundled lane
  // holds while its replacement lingers (docs/BENCHMARKS.md, session 26).
  readonly #key: string | undefined;
  readonly #generation: number;
  readonly #allowedMs: number | undefined;
  /** As delivered; undefined for a bundle entry until first read (then its state headers). */
  #headers: Headers | undefined;
  readonly #bundled: boolean;
  readonly #contentType: string | undefined;
  readonly #parsed: { readonly value: unknown } | undefined;
  readonly #badBody: BadBodyError | undefined;
  readonly waypoint: boolean;

  constructor(
    readonly id: string,
    lane: LaneConfig,
    readonly body: Buffer,
    readonly priority: number,
    state: MessageState,
    headers: Headers | undefined,
    readonly early: boolean,
    readonly redelivered: boolean,
    contentType: string | undefined,
    bad: BadBodyError | undefined,
  ) {
    this.lane = lane.name;
    this.runs = state.runs;
    this.attempt = state.attempt;
    this.dueAtMs = state.dueAt;
    this.#lane = lane;
    this.#key = state.key;
    this.#generation = state.generation;
    this.#allowedMs = state.allowedMs;
    this.#headers = headers;
    this.#bundled = headers === undefined;
    // A bundle never holds a waypoint (a hop travels alone).
    this.waypoint = headers !== undefined && headers[HEADER.waypoint] !== undefined;
    this.#contentType = contentType;
    let badBody = bad;
    let parsed: { value: unknown } | undefined;
    if (!badBody && lane.format === 'json') {
      try {
        parsed = { value: JSON.parse(body.toString('utf8')) };
      } catch (err) {
        badBody = new BadBodyError(`body is not valid JSON: ${errorMessage(err)}`, { cause: err });
      }
    }
    this.#parsed = parsed;
    this.#badBody = badBody;
  }

  /** Made when first read: most handlers never read it, and a Date per message held while its bundle lingers costs the collector. */
  get dueAt(): Date {
    return (this.#dueAt ??= new Date(this.dueAtMs));
  }

  /** Read twice per run (the copy check before it, the record after it): one `join`, not two. */
  get runKey(): string | undefined {
    if (this.#runKey === null) this.#runKey = runKey(this.lane, this);
    return this.#runKey;
  }

  get badBody(): BadBodyError | undefined {
    return this.#badBody;
  }

  get generation(): number {
    return this.#generation;
  }

  get allowedMs(): number | undefined {
    return this.#allowedMs;
  }

  get message(): Message {
    return this;
  }

  json<T = unknown>(): T {
    return (this.#parsed ? this.#parsed.value : JSON.parse(this.body.toString('utf8'))) as T;
  }

  get headers(): Headers {
    return (this.#headers ??= writeState(NO_HEADERS, { dueAt: this.dueAtMs, runs: this.runs, attempt: this.attempt, lane: this.lane, key: this.#key, generation: this.#generation }));
  }

  get decision(): DecisionInput {
    return {
      id: this.id,
      lane: this.#lane,
      body: this.body,
      priority: this.priority,
      runs: this.runs,
      attempt: this.attempt,
      key: this.#key,
      generation: this.#generation,
      userHeaders: this.#bundled ? NO_HEADERS : userHeaders(this.headers),
    };
  }

  /** Only a dead letter needs the verbatim copy. */
  get stored(): StoredMessage {
    return { id: this.id, body: this.body, priority: this.priority, headers: withoutBrokerHeaders(this.headers), contentType: this.#contentType };
  }

  /** What `JSON.stringify(message)` (a handler logging it) showed when messages were plain objects. */
  toJSON(): Record<string, unknown> {
    const { id, lane, body, priority, runs, attempt, dueAt, early, redelivered, headers } = this;
    return { id, lane, body, priority, runs, attempt, dueAt, early, redelivered, headers };
  }
}
