import http from 'node:http';
import https from 'node:https';
import { resolveHeaders } from '../config/http-headers';
import type { HttpHandlerConfig } from '../config/types';
import { redactUrl } from '../config/redact';
import { OrbitError, UnrecoverableError } from '../errors';
import type { Handler, Message, Outcome, RescheduleOptions } from './handler-types';

/** Client-error statuses that mean "try again later" (Request Timeout, Too Early, Too Many Requests). */
const RETRYABLE_4XX: ReadonlySet<number> = new Set([408, 425, 429]);

/** Most of a response body kept in an error (and so in a dead letter's headers). */
const SNIPPET_BYTES = 512;
/** Largest response body read: outcomes are small; anything bigger is a broken endpoint. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/** A retryable failure of an HTTP handler: 5xx, connection trouble, a malformed response. */
export class HttpHandlerError extends OrbitError {
  constructor(code: 'HTTP_SERVER_ERROR' | 'HTTP_CONNECTION_FAILED' | 'HTTP_BAD_RESPONSE', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The JSON document orbit POSTs for each message (docs/HTTP-HANDLERS.md). */
export interface HttpHandlerRequest {
  readonly id: string;
  readonly lane: string;
  /** The body as JSON when it parses, else base64 (see `bodyEncoding`). */
  readonly body: unknown;
  readonly bodyEncoding: 'json' | 'base64';
  readonly priority: number;
  readonly runs: number;
  readonly attempt: number;
  readonly dueAt: string;
  readonly early: boolean;
}

export interface HttpHandler {
  readonly handle: Handler;
  /** Closes pooled keep-alive connections. */
  close(): void;
}

/**
 * A handler that is an HTTP endpoint, so handlers can be written in any language.
 * Keep-alive connections are pooled, at most `concurrency` of them: one per handler slot.
 *
 * Contract: 200 with `{"done": true}`, `{"reschedule": {...}}` or an empty body (done),
 * 204 (done); 4xx → unrecoverable (dead, status and a body snippet recorded) except 408,
 * 425 and 429, which are retried like 5xx;
 * connection errors and the lane timeout → retryable; anything else → HTTP_BAD_RESPONSE.
 *
 * The header secrets are read here, when the daemon starts, and nowhere else.
 *
 * @param at - the handler's config key, naming a header that cannot be resolved
 * @throws ConfigError when a header's variable is unset or its file cannot be read
 */
export function createHttpHandler(config: HttpHandlerConfig, concurrency: number, at = 'handler'): HttpHandler {
  const headers = resolveHeaders(config, at);
  const url = new URL(config.url);
  const secure = url.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: concurrency })
    : new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const shown = redactUrl(config.url);

  const handle: Handler = (message, ctx) =>
    new Promise<Outcome>((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(requestFor(message)));
      const req = (secure ? https : http).request(
        url,
        {
          method: 'POST',
          agent,
          signal: ctx.signal,
          headers: {
            ...headers,
            'content-type': 'application/json',
            'content-length': payload.length,
            'x-orbit-id': message.id,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              reject(new HttpHandlerError('HTTP_BAD_RESPONSE', `response from ${shown} exceeds ${MAX_RESPONSE_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', (err) => reject(new HttpHandlerError('HTTP_CONNECTION_FAILED', `reading the response from ${shown} failed: ${err.message}`, { cause: err })));
          res.on('end', () => {
            try {
              resolve(outcomeFor(res.statusCode ?? 0, Buffer.concat(chunks), shown));
            } catch (err) {
              reject(err);
            }
          });
        },
      );
      req.on('error', (err) => {
        // Aborted by the lane timeout: the runner has already counted the attempt as failed.
        if (ctx.signal.aborted) return reject(ctx.signal.reason);
        reject(new HttpHandlerError('HTTP_CONNECTION_FAILED', `request to ${shown} failed: ${err.message}`, { cause: err }));
      });
      req.end(payload);
    });

  return { handle, close: () => agent.destroy() };
}

export function requestFor(message: Message): HttpHandlerRequest {
  let body: unknown;
  let bodyEncoding: 'json' | 'base64' = 'json';
  try {
    body = message.json();
  } catch {
    body = message.body.toString('base64');
    bodyEncoding = 'base64';
  }
  return {
    id: message.id,
    lane: message.lane,
    body,
    bodyEncoding,
    priority: message.priority,
    runs: message.runs,
    attempt: message.attempt,
    dueAt: message.dueAt.toISOString(),
    early: message.early,
  };
}

/** Reads the outcome from a response. Pure; exported for unit tests. */
export function outcomeFor(status: number, body: Buffer, shown: string): Outcome {
  // 408, 425 and 429 say "not now", not "never": retried like a 5xx.
  if (RETRYABLE_4XX.has(status)) throw new HttpHandlerError('HTTP_SERVER_ERROR', `HTTP ${status} from ${shown}: ${snippet(body)}`);
  if (status >= 400 && status < 500) {
    throw new UnrecoverableError(`HTTP ${status} from ${shown}: ${snippet(body)}`, { code: 'HTTP_CLIENT_ERROR' });
  }
  if (status >= 500) throw new HttpHandlerError('HTTP_SERVER_ERROR', `HTTP ${status} from ${shown}: ${snippet(body)}`);
  if (status === 204) return undefined;
  if (status !== 200) throw new HttpHandlerError('HTTP_BAD_RESPONSE', `unexpected HTTP ${status} from ${shown}: ${snippet(body)}`);
  const text = body.toString('utf8').trim();
  if (text === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpHandlerError('HTTP_BAD_RESPONSE', `response from ${shown} is not JSON: ${snippet(body)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpHandlerError('HTTP_BAD_RESPONSE', `response from ${shown} must be a JSON object: ${snippet(body)}`);
  }
  const obj = value as Record<string, unknown>;
  if (obj.done === true && obj.reschedule === undefined) return { done: true };
  if (typeof obj.reschedule === 'object' && obj.reschedule !== null && !Array.isArray(obj.reschedule)) {
    const r = obj.reschedule as Record<string, unknown> & RescheduleOptions;
    const { bodyEncoding: encoding, ...rest } = r;
    if (encoding === 'base64') {
      if (typeof r.body !== 'string') throw new HttpHandlerError('HTTP_BAD_RESPONSE', `reschedule.body must be a base64 string with bodyEncoding "base64"`);
      return { reschedule: { ...rest, body: Buffer.from(r.body, 'base64') } };
    }
    if (encoding !== undefined && encoding !== 'json') {
      throw new HttpHandlerError('HTTP_BAD_RESPONSE', `reschedule.bodyEncoding must be "json" or "base64": ${snippet(body)}`);
    }
    // A JSON body is stored as JSON text, as it was sent: echoing the string "x" back keeps the
    // JSON string "x" (not the bare bytes x, which would come back base64 on the next run).
    return { reschedule: rest.body === undefined ? rest : { ...rest, body: Buffer.from(JSON.stringify(rest.body), 'utf8') } };
  }
  throw new HttpHandlerError('HTTP_BAD_RESPONSE', `response from ${shown} is neither {"done": true} nor {"reschedule": {...}}: ${snippet(body)}`);
}

function snippet(body: Buffer): string {
  const text = body.subarray(0, SNIPPET_BYTES).toString('utf8').replace(/\s+/g, ' ').trim();
  return body.length > SNIPPET_BYTES ? `${text}…` : text || '(empty body)';
}
