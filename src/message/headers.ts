import { randomUUID } from 'node:crypto';

/**
 * orbit's own message state lives in headers it owns (DESIGN.md, "The message and its
 * headers"). Never in `x-death`: RabbitMQ 4 ignores client-set `x-death`, and it grows
 * with every pass through a delay level, so it is stripped on every republish.
 */
export const HEADER = {
  due: 'x-orbit-due',
  runs: 'x-orbit-runs',
  attempt: 'x-orbit-attempt',
  lane: 'x-orbit-lane',
  /** Partition key, when the publisher gave one (else the id decides the partition). */
  key: 'x-orbit-key',
  /**
   * The message's generation: when it was first published (epoch ms, fractional), kept across
   * reschedules and retries. A cancel drops the copies of an id older than itself
   * (`message/tombstones.ts`); absent (an older orbit, another client): 0, older than any cancel.
   */
  generation: 'x-orbit-gen',
  /**
   * Set on a hop of a delay longer than a cancel is remembered (`delay/waypoints.ts`): the
   * lane sends the message on for what is left of its delay instead of running it.
   */
  waypoint: 'x-orbit-waypoint',
  /**
   * How late the message may run after its due time and still keep its promise, in ms: the
   * publisher's `τ × delay + unit + linger` (`delay/ladder.ts`, `allowedLatenessMs`), so a lane
   * can tell a run past its bound (`orbit_lateness_bound_ratio`). A number on a plain message;
   * on a bundle, the entries' allowances in order (`message/bundle.ts`, `encodeAllowances`).
   * Absent (an older orbit, another client): the run is not judged against a bound.
   */
  allowed: 'x-orbit-allowed',
  errorCode: 'x-orbit-error-code',
  errorMessage: 'x-orbit-error',
  deadAt: 'x-orbit-dead-at',
  deadLane: 'x-orbit-dead-lane',
  deadAttempts: 'x-orbit-dead-attempts',
} as const;

/**
 * Headers the broker adds: death records while a message passes through dead-lettering, and
 * a quorum queue's `x-delivery-count` (the returns so far, in that queue only). Carried into
 * a republished message they would be stale: a new copy starts with none. And `CC`, the
 * routing keys a message on the delay ladder was published with (the broker keeps it in the
 * headers): carried along, it would route the copy to its old destination as well.
 */
const BROKER_HEADERS: ReadonlySet<string> = new Set([
  'CC',
  'BCC',
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-delivery-count',
]);

export type Headers = Record<string, unknown>;

/** Headers of a message that has none of its own; shared, so frozen (writeState and userHeaders copy). */
export const NO_HEADERS: Headers = Object.freeze({}) as Headers;

/**
 * A received message's headers, for reading. amqplib types them loosely and leaves them out
 * when there are none: one typed read here instead of a cast at every call site.
 */
export function headersOf(msg: { readonly properties: { readonly headers?: unknown } }): Headers {
  const headers = msg.properties.headers;
  return typeof headers === 'object' && headers !== null ? (headers as Headers) : NO_HEADERS;
}

/**
 * A delivery's message id: its `message-id` property, or a new one for a message a foreign
 * publisher sent without (it keeps that id from its first republish on).
 */
export function messageIdOf(messageId: unknown): string {
  return typeof messageId === 'string' && messageId !== '' ? messageId : randomUUID();
}

/** orbit state read from a delivery's headers. */
export interface MessageState {
  readonly dueAt: number;
  readonly runs: number;
  readonly attempt: number;
  readonly lane: string | undefined;
  readonly key: string | undefined;
  /** 0 when the message carries none. */
  readonly generation: number;
  /** `HEADER.allowed`; undefined when the message carries none. */
  readonly allowedMs: number | undefined;
}

/**
 * Reads orbit's headers leniently: a message published by another client, or with garbage
 * in them, is treated as due now, never run, first attempt — it must run, not crash.
 */
export function readState(headers: Headers | undefined, now: number): MessageState {
  const h = headers ?? {};
  // Own properties only: amqplib decodes a header named `__proto__` into the prototype of
  // the headers object, which must not be able to supply orbit's state.
  const get = (name: string): unknown => (Object.prototype.hasOwnProperty.call(h, name) ? h[name] : undefined);
  return {
    dueAt: toCount(get(HEADER.due), now),
    runs: toCount(get(HEADER.runs), 0),
    attempt: toCount(get(HEADER.attempt), 0),
    lane: text(get(HEADER.lane)),
    key: text(get(HEADER.key)),
    generation: toGeneration(get(HEADER.generation)),
    allowedMs: toAllowance(get(HEADER.allowed)),
  };
}

/** An allowance from a header: a finite number > 0, else undefined (not judged). */
function toAllowance(value: unknown): number | undefined {
  const n = headerNumber(value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/** A numeric header as amqplib decodes it (a number, or a bigint for a 64-bit integer); NaN otherwise. */
export function headerNumber(value: unknown): number {
  return typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : NaN;
}

/** A generation from a header: a finite non-negative number (a double on the wire), else 0. */
function toGeneration(value: unknown): number {
  const n = headerNumber(value);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
}

/** A non-negative safe integer from a header value (number, bigint, numeric string or Buffer). */
function toCount(value: unknown, fallback: number): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'bigint') n = Number(value);
  else if (typeof value === 'string' || Buffer.isBuffer(value)) {
    const text = value.toString().trim();
    n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  } else n = NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : fallback;
}

/** The user's own headers: everything except orbit's state and the broker's death records. */
export function userHeaders(headers: Headers | undefined): Headers {
  const out: Headers = {};
  if (!headers) return out;
  for (const [key, value] of Object.entries(headers)) {
    // `out.__proto__ = value` would replace out's prototype (and amqplib publishes inherited keys).
    if (key.startsWith('x-orbit-') || BROKER_HEADERS.has(key) || key === '__proto__') continue;
    out[key] = value;
  }
  return out;
}

/** The headers as delivered, minus the broker's death records: what a dead letter keeps. */
export function withoutBrokerHeaders(headers: Headers | undefined): Headers {
  const out: Headers = {};
  for (const [key, value] of Object.entries(headers ?? {})) if (!BROKER_HEADERS.has(key) && key !== '__proto__') out[key] = value;
  return out;
}

/** Headers for a republish: the user's headers plus orbit's state. */
export function writeState(
  user: Headers,
  state: { dueAt: number; runs: number; attempt: number; lane: string; key?: string | undefined; generation?: number },
): Headers {
  const headers: Headers = {
    ...user,
    [HEADER.due]: state.dueAt,
    [HEADER.runs]: state.runs,
    [HEADER.attempt]: state.attempt,
    [HEADER.lane]: state.lane,
  };
  if (state.key !== undefined) headers[HEADER.key] = state.key;
  if (state.generation) headers[HEADER.generation] = state.generation;
  return headers;
}
