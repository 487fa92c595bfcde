import { randomUUID } from 'node:crypto';
import type { Message as AmqpMessage } from 'amqplib';
import type { LaneConfig } from '../config/types';
import { BadBodyError } from '../errors';
import { BUNDLE_HEADER, decodeBundle, type BundleEntry } from '../message/bundle';
import { type Headers, type MessageState, NO_HEADERS, readState, userHeaders, withoutBrokerHeaders, writeState } from '../message/headers';
import type { StoredMessage } from '../message/types';
import type { DecisionInput } from './decide-outcome';
import type { Message } from './handler-types';

/** One logical message taken from a delivery: what the handler sees, and what settling needs. */
export interface IncomingMessage {
  readonly message: Message;
  readonly decision: DecisionInput;
  readonly stored: StoredMessage;
  /** Set when the lane's `format` check fails: the handler must not run. */
  readonly badBody: BadBodyError | undefined;
}

/**
 * Decodes a delivery into its logical messages: one for a plain message, many for a
 * bundle. The worker settles each on its own and acks the delivery when all of them are.
 * A bundle that does not decode becomes one message failing with BAD_BODY, kept whole.
 */
export function decodeDelivery(raw: AmqpMessage, lane: LaneConfig, now: number, early = false): IncomingMessage[] {
  const headers = (raw.properties.headers ?? {}) as Headers;
  const priority = typeof raw.properties.priority === 'number' ? Math.min(raw.properties.priority, lane.maxPriority) : 0;
  const contentType = typeof raw.properties.contentType === 'string' ? raw.properties.contentType : undefined;
  const redelivered = raw.fields.redelivered;
  const rawId: unknown = raw.properties.messageId;
  // A message from a foreign publisher may have no id; it gets one here and keeps it from
  // its first republish on.
  const id = typeof rawId === 'string' && rawId !== '' ? rawId : randomUUID();

  const version = headers[BUNDLE_HEADER];
  if (version !== undefined) {
    let entries: BundleEntry[];
    try {
      entries = decodeBundle(raw.content, version);
    } catch (err) {
      const state = readState(headers, now);
      const bad = err instanceof BadBodyError ? err : new BadBodyError(String(err));
      return [logical({ id, state, body: raw.content, priority, headers: () => headers, lane, early, redelivered, contentType }, bad)];
    }
    return entries.map((e) => {
      const state = { dueAt: e.dueAt, runs: e.runs, attempt: e.attempt, lane: lane.name, key: e.key };
      // What a plain message would carry: the handler and a dead letter see the same headers.
      // Made on first read: a bundle carries no user headers, and most handlers never look.
      let own: Headers | undefined;
      const headersOf = (): Headers => (own ??= writeState(NO_HEADERS, state));
      return logical({ id: e.id, state, body: e.body, priority, headers: headersOf, lane, early, redelivered, contentType: undefined, bundled: true });
    });
  }
  const state = readState(headers, now);
  return [logical({ id, state, body: raw.content, priority, headers: () => headers, lane, early, redelivered, contentType })];
}

interface Logical {
  readonly id: string;
  readonly state: MessageState;
  readonly body: Buffer;
  readonly priority: number;
  /** The headers as delivered (or, for a bundle entry, as a plain message would carry them). */
  readonly headers: () => Headers;
  readonly lane: LaneConfig;
  readonly early: boolean;
  readonly redelivered: boolean;
  readonly contentType: string | undefined;
  /** An entry of a bundle (its headers are orbit's state only). */
  readonly bundled?: boolean;
}

function logical(m: Logical, bad?: BadBodyError): IncomingMessage {
  const { id, state, body, priority, headers, lane } = m;
  let badBody = bad;
  let parsed: { value: unknown } | undefined;
  if (!badBody && lane.format === 'json') {
    try {
      parsed = { value: JSON.parse(body.toString('utf8')) };
    } catch (err) {
      badBody = new BadBodyError(`body is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  const message: Message = {
    id,
    lane: lane.name,
    body,
    json: <T>() => (parsed ? parsed.value : JSON.parse(body.toString('utf8'))) as T,
    priority,
    runs: state.runs,
    attempt: state.attempt,
    dueAt: new Date(state.dueAt),
    early: m.early,
    redelivered: m.redelivered,
    get headers(): Headers {
      return headers();
    },
  };
  return {
    message,
    badBody,
    // A bundle entry has no user headers of its own (a message with headers is never bundled).
    decision: { id, lane, body, priority, runs: state.runs, attempt: state.attempt, key: state.key, userHeaders: m.bundled ? NO_HEADERS : userHeaders(headers()) },
    // Only a dead letter needs the verbatim copy: made on first use.
    get stored(): StoredMessage {
      return { id, body, priority, headers: withoutBrokerHeaders(headers()), contentType: m.contentType };
    },
  };
}
