import { errorMessage, InvalidMessageError } from '../errors';
import type { PublishMessageOptions } from './scheduler';

/** One line of `orbit publish --file` / stdin input. */
export interface PublishLine {
  readonly lane: string | undefined;
  readonly body: unknown;
  readonly options: PublishMessageOptions;
}

const KEYS = new Set(['id', 'key', 'body', 'delay', 'at', 'priority', 'lane']);

/**
 * The error for a bad input line: its message starts with `line N:` so a user can find it in
 * a file of millions, and it carries `line` so that code need not parse that back.
 */
export function lineError(lineNumber: number, reason: string, cause?: unknown): InvalidMessageError {
  return new InvalidMessageError(`line ${lineNumber}: ${reason}`, { cause, code: 'BAD_LINE', line: lineNumber });
}

function fail(lineNumber: number, reason: string, cause?: unknown): never {
  throw lineError(lineNumber, reason, cause);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses one JSON line: `{"id"?, "body", "delay"?, "at"?, "priority"?, "lane"?}`. Errors
 * name the line. The body is any JSON value, sent as its JSON text. Unknown keys are
 * refused: a typo like `"dealy"` must not silently publish a message due now.
 */
export function parsePublishLine(text: string, lineNumber: number): PublishLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(lineNumber, `not valid JSON (${errorMessage(err)})`, err);
  }
  if (!isObject(value)) fail(lineNumber, 'expected a JSON object');
  for (const key of Object.keys(value)) if (!KEYS.has(key)) fail(lineNumber, `unknown key "${key}" (allowed: ${[...KEYS].join(', ')})`);
  if (!('body' in value)) fail(lineNumber, '"body" is required');
  const { id, key, delay, at, priority, lane } = value;
  if (lane !== undefined && typeof lane !== 'string') fail(lineNumber, '"lane" must be a string');
  if (delay !== undefined && typeof delay !== 'number' && typeof delay !== 'string') fail(lineNumber, '"delay" must be a number (ms) or a duration string');
  if (at !== undefined && typeof at !== 'string' && typeof at !== 'number') fail(lineNumber, '"at" must be an ISO-8601 string or epoch ms');
  if (priority !== undefined && typeof priority !== 'number') fail(lineNumber, '"priority" must be a number');
  if (id !== undefined && typeof id !== 'string') fail(lineNumber, '"id" must be a string');
  if (key !== undefined && typeof key !== 'string') fail(lineNumber, '"key" must be a string');
  return { lane, body: value['body'], options: { id, key, delay, at, priority } };
}
