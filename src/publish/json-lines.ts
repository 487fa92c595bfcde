import { InvalidMessageError } from '../errors';
import type { PublishMessageOptions } from './scheduler';

/** One line of `orbit publish --file` / stdin input. */
export interface PublishLine {
  readonly lane: string | undefined;
  readonly body: unknown;
  readonly options: PublishMessageOptions;
}

const KEYS = new Set(['id', 'key', 'body', 'delay', 'at', 'priority', 'lane']);

/**
 * Parses one JSON line: `{"id"?, "body", "delay"?, "at"?, "priority"?, "lane"?}`. Errors
 * name the line so a user can find it in a file of millions. The body is any JSON value,
 * sent as its JSON text. Unknown keys are refused: a typo like `"dealy"` must not silently
 * publish a message due now.
 */
export function parsePublishLine(text: string, lineNumber: number): PublishLine {
  const fail = (reason: string, cause?: unknown): never => {
    throw new InvalidMessageError(`line ${lineNumber}: ${reason}`, { cause, code: 'BAD_LINE' });
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(`not valid JSON (${(err as Error).message})`, err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('expected a JSON object');
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!KEYS.has(key)) fail(`unknown key "${key}" (allowed: ${[...KEYS].join(', ')})`);
  if (!('body' in obj)) fail('"body" is required');
  const { id, key, delay, at, priority, lane } = obj;
  if (lane !== undefined && typeof lane !== 'string') fail('"lane" must be a string');
  if (delay !== undefined && typeof delay !== 'number' && typeof delay !== 'string') fail('"delay" must be a number (ms) or a duration string');
  if (at !== undefined && typeof at !== 'string' && typeof at !== 'number') fail('"at" must be an ISO-8601 string or epoch ms');
  if (priority !== undefined && typeof priority !== 'number') fail('"priority" must be a number');
  if (id !== undefined && typeof id !== 'string') fail('"id" must be a string');
  if (key !== undefined && typeof key !== 'string') fail('"key" must be a string');
  return {
    lane: lane as string | undefined,
    body: obj.body,
    options: {
      id: id as string | undefined,
      key: key as string | undefined,
      delay: delay as number | string | undefined,
      at: at as string | number | undefined,
      priority: priority as number | undefined,
    },
  };
}
