import type { Message } from 'amqplib';
import { matchesFilter, type DeadLetterQueue, type DeadQueueName, type ReplayFilter } from '../../dlq/dead-letter-queue';
import { describeDeadMessage } from '../../dlq/describe';
import { headersOf, HEADER } from '../../message/headers';

/**
 * The console's reads of `<ns>.dead` and `<ns>.unroutable`, each bounded so that a queue of a
 * million messages costs no more than one of a thousand (README "Console"):
 * - a page reads at most offset + limit messages from the head, and offset + limit ≤ PAGE_END_MAX;
 * - a search (by id or lane) and opening one message scan at most SCAN_MAX from the head and
 *   say so (`scanned`, `truncated`);
 * - one replay or purge click with a filter looks at most SCAN_MAX messages.
 * Every read goes through `DeadLetterQueue.peek`: fetched unacked, handed back by closing the
 * channel, so nothing is reordered or lost.
 */
export const PAGE_DEFAULT = 50;
export const PAGE_END_MAX = 1_000;
export const SCAN_MAX = 10_000;
/** Bodies larger than this are shown cut (a page must stay small). */
export const BODY_SHOWN_MAX = 256 * 1024;

export interface DeadLetterRow {
  /** 0-based position from the head when it was read. */
  readonly position: number;
  readonly id: string | null;
  readonly lane: string | null;
  readonly code: string | null;
  readonly error: string | null;
  readonly attempts: number | null;
  /** ISO time it was dead-lettered; null when unknown (unroutable messages have none). */
  readonly deadAt: string | null;
  readonly bytes: number;
  readonly preview: string;
}

export interface DeadLetterPage {
  readonly queue: string;
  /** The queue's depth when read. */
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly rows: readonly DeadLetterRow[];
  /** Messages fetched to build this page. */
  readonly scanned: number;
  /** A search stopped at SCAN_MAX before the end of the queue: matches further back are not shown. */
  readonly truncated: boolean;
  /** The bound that applied, in words, for the page to show. */
  readonly bound: string;
}

export interface PageQuery {
  readonly offset: number;
  readonly limit: number;
  readonly id?: string;
  readonly lane?: string;
}

/** A page of rows: the plain list, or the matches of a search within the first SCAN_MAX. */
export async function readPage(dlq: DeadLetterQueue, which: DeadQueueName, query: PageQuery, now = Date.now()): Promise<DeadLetterPage> {
  const offset = Math.max(0, Math.min(query.offset, PAGE_END_MAX - 1));
  const limit = Math.max(1, Math.min(query.limit, PAGE_END_MAX - offset));
  const filtered = query.id !== undefined || query.lane !== undefined;
  const rows: DeadLetterRow[] = [];
  let matched = 0;
  const scan = filtered ? SCAN_MAX : offset + limit;
  const { scanned, total } = await dlq.peek(which, scan, (msg, position) => {
    if (filtered && !matchesFilter(msg, query)) return true;
    if (matched++ >= offset) rows.push(row(msg, position, now));
    return rows.length < limit;
  });
  const truncated = filtered && scanned >= SCAN_MAX && total > SCAN_MAX && rows.length < limit;
  const bound = filtered
    ? `search looks at the first ${SCAN_MAX.toLocaleString('en')} messages only`
    : `pages reach the first ${PAGE_END_MAX.toLocaleString('en')} messages only`;
  return { queue: dlq.queueName(which), total, offset, limit, rows, scanned, truncated, bound };
}

export interface DeadLetterDetail {
  readonly row: DeadLetterRow;
  /** `json` (pretty-printed), `text` (UTF-8) or `binary` (base64 and hex). */
  readonly bodyKind: 'json' | 'text' | 'binary';
  readonly body: string;
  readonly hex: string | null;
  readonly bodyTruncated: boolean;
  readonly headers: Record<string, unknown>;
  readonly properties: Record<string, unknown>;
}

/** The first message with this id within the first SCAN_MAX, in full; null when not found there. */
export async function readMessage(
  dlq: DeadLetterQueue,
  which: DeadQueueName,
  id: string,
  now = Date.now(),
): Promise<{ message: DeadLetterDetail | null; scanned: number; truncated: boolean }> {
  let found: DeadLetterDetail | null = null;
  const { scanned, total } = await dlq.peek(which, SCAN_MAX, (msg, position) => {
    if (msg.properties.messageId !== id) return true;
    found = detail(msg, position, now);
    return false;
  });
  return { message: found, scanned, truncated: found === null && total > scanned };
}

/** How many messages a bulk action with this filter would touch (within SCAN_MAX when filtered). */
export async function countMatching(dlq: DeadLetterQueue, which: DeadQueueName, filter: ReplayFilter): Promise<{ count: number; total: number; truncated: boolean }> {
  if (filter.id === undefined && filter.lane === undefined) {
    const total = await dlq.count(which);
    return { count: total, total, truncated: false };
  }
  let count = 0;
  const { scanned, total } = await dlq.peek(which, SCAN_MAX, (msg) => {
    if (matchesFilter(msg, filter)) count++;
  });
  return { count, total, truncated: total > scanned };
}

function row(msg: Message, position: number, now: number): DeadLetterRow {
  const view = describeDeadMessage(msg.content, msg.properties, now);
  const deadAt = headersOf(msg)[HEADER.deadAt];
  const at = typeof deadAt === 'number' ? deadAt : typeof deadAt === 'bigint' ? Number(deadAt) : NaN;
  return {
    position,
    id: view.id,
    lane: view.lane,
    code: view.code,
    error: view.error,
    attempts: view.attempts,
    deadAt: Number.isFinite(at) ? new Date(at).toISOString() : null,
    bytes: view.bytes,
    preview: view.preview,
  };
}

function detail(msg: Message, position: number, now: number): DeadLetterDetail {
  const content = msg.content;
  const shown = content.subarray(0, BODY_SHOWN_MAX);
  const bodyTruncated = content.length > shown.length;
  const text = shown.toString('utf8');
  // Valid UTF-8 round-trips; anything else (or control bytes other than whitespace) is binary.
  // eslint-disable-next-line no-control-regex
  const isText = Buffer.from(text, 'utf8').equals(shown) && !/[\u0000-\u0008\u000e-\u001f\u007f]/.test(text);
  let bodyKind: DeadLetterDetail['bodyKind'] = isText ? 'text' : 'binary';
  let body = isText ? text : shown.toString('base64');
  if (isText && !bodyTruncated) {
    try {
      body = JSON.stringify(JSON.parse(text), null, 2);
      bodyKind = 'json';
    } catch {
      // Not JSON: shown as text.
    }
  }
  const props = msg.properties;
  return {
    row: row(msg, position, now),
    bodyKind,
    body,
    hex: isText ? null : shown.subarray(0, 4096).toString('hex'),
    bodyTruncated,
    headers: plain(headersOf(msg)) as Record<string, unknown>,
    properties: plain({
      messageId: props.messageId,
      contentType: props.contentType,
      contentEncoding: props.contentEncoding,
      priority: props.priority,
      timestamp: props.timestamp,
      correlationId: props.correlationId,
      type: props.type,
      appId: props.appId,
    }) as Record<string, unknown>,
  };
}

/** Header values made JSON-safe: Buffers as text, bigints as numbers, undefined dropped. */
function plain(value: unknown, depth = 0): unknown {
  if (depth > 8) return '…';
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v, depth + 1);
    return out;
  }
  return value;
}
