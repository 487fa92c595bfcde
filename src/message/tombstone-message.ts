import { headerNumber, headersOf } from './headers';

/**
 * The tombstone stream's messages (`<ns>.cancelled`). Pure. Two kinds, both with an empty body:
 * - a cancel: `message-id` the cancelled id, header `x-orbit-cancel-before` the generation
 *   before which its copies are dropped (`message/generation.ts`);
 * - a sync mark: header `x-orbit-sync`, a token a daemon writes to the stream and reads back
 *   to know it has read everything written before (AMQP tells a stream reader no end).
 */
export const CANCEL_BEFORE_HEADER = 'x-orbit-cancel-before';
export const SYNC_HEADER = 'x-orbit-sync';

export type StreamEntry =
  | { readonly kind: 'cancel'; readonly id: string; readonly before: number }
  | { readonly kind: 'sync'; readonly token: string }
  | { readonly kind: 'other' };

/** Reads one message of the stream; anything else written there (by hand) is `other`, skipped. */
export function readStreamEntry(msg: { readonly properties: { readonly messageId?: unknown; readonly headers?: unknown } }): StreamEntry {
  const headers = headersOf(msg);
  const token = headers[SYNC_HEADER];
  if (typeof token === 'string' || Buffer.isBuffer(token)) return { kind: 'sync', token: token.toString() };
  const before = headerNumber(headers[CANCEL_BEFORE_HEADER]);
  const id = msg.properties.messageId;
  if (typeof id === 'string' && id !== '' && Number.isFinite(before) && before > 0) return { kind: 'cancel', id, before };
  return { kind: 'other' };
}

/** The offset of a message read from a stream (RabbitMQ puts it in `x-stream-offset`), when it has one. */
export function streamOffsetOf(msg: { readonly properties: { readonly headers?: unknown } }): number | undefined {
  const n = headerNumber(headersOf(msg)['x-stream-offset']);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
