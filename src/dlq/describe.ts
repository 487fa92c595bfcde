import type { MessageProperties } from 'amqplib';
import { headersOf, HEADER, readState, type Headers } from '../message/headers';

/** A dead or unroutable message as `orbit dlq list` shows it. Pure. */
export interface DeadMessageView {
  readonly id: string | null;
  readonly lane: string | null;
  readonly code: string | null;
  readonly error: string | null;
  readonly attempts: number | null;
  /** ms since it was dead-lettered (null when unknown, e.g. unroutable). */
  readonly ageMs: number | null;
  readonly bytes: number;
  readonly preview: string;
}

const PREVIEW_CHARS = 60;

export function describeDeadMessage(body: Buffer, properties: Pick<MessageProperties, 'messageId' | 'headers'>, now: number): DeadMessageView {
  const headers = headersOf({ properties });
  const deadAt = numberOrNull(headers[HEADER.deadAt]);
  return {
    id: typeof properties.messageId === 'string' ? properties.messageId : null,
    lane: laneOf(headers),
    code: stringOrNull(headers[HEADER.errorCode]),
    error: stringOrNull(headers[HEADER.errorMessage]),
    attempts: numberOrNull(headers[HEADER.deadAttempts]),
    ageMs: deadAt === null ? null : Math.max(0, now - deadAt),
    bytes: body.length,
    preview: preview(body),
  };
}

/** The lane a dead or unroutable message belongs to: where it died, else where it was going. */
export function laneOf(headers: Headers): string | null {
  return stringOrNull(headers[HEADER.deadLane]) ?? readState(headers, 0).lane ?? null;
}

/** Printable start of a body: control bytes escaped, long bodies cut with an ellipsis. */
export function preview(body: Buffer): string {
  const text = body.subarray(0, PREVIEW_CHARS * 4).toString('utf8');
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return clean.length > PREVIEW_CHARS || body.length > PREVIEW_CHARS * 4 ? `${clean.slice(0, PREVIEW_CHARS)}…` : clean;
}

function stringOrNull(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return null;
}

function numberOrNull(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : null;
}
