import type { IncomingMessage, ServerResponse } from 'node:http';
import { configView } from '../../config/view';
import type { DeadQueueName, ReplayFilter } from '../../dlq/dead-letter-queue';
import { ConfigError, errorMessage, InvalidMessageError, isOrbitError, OrbitError } from '../../errors';
import { expectedDueWithin } from '../../stats/forecast';
import { IN_FLIGHT_NEEDS_URL } from '../../stats/in-flight';
import type { BrokerView } from './broker-view';
import type { CsrfGuard } from './csrf';
import { countMatching, PAGE_DEFAULT, readMessage, readPage, SCAN_MAX } from './dead-letters';

/** The forecast horizons the Schedule page charts. */
export const FORECAST_HORIZONS = [
  { name: 'minute', ms: 60_000 },
  { name: 'hour', ms: 3_600_000 },
  { name: 'day', ms: 86_400_000 },
  { name: 'week', ms: 7 * 86_400_000 },
] as const;

/** Largest JSON body an action takes: ids of a selected page fit many times over. */
const BODY_MAX_BYTES = 256 * 1024;
/** Most ids one "Replay selected" takes: a page's worth, with room. */
const SELECTED_MAX = 1_000;

export interface ApiContext {
  readonly broker: BrokerView;
  readonly csrf: CsrfGuard;
  readonly readOnly: boolean;
}

/**
 * The console's JSON endpoints under `/ui/api/` (the caller has checked the token). GETs
 * only look; POSTs act, and only when the console is not read-only and the CSRF check passes.
 */
export async function handleApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
  try {
    const route = path.slice('/ui/api/'.length);
    if (req.method === 'POST') {
      if (ctx.readOnly) {
        return json(res, 403, { error: 'the console is read-only (http.ui.readOnly is true): replay and purge are disabled', code: 'UI_READ_ONLY' });
      }
      const refused = ctx.csrf.refuse(req);
      if (refused !== null) return json(res, 403, { error: refused, code: 'UI_CSRF' });
      const body = await readJson(req);
      if (route === 'dead/replay') return json(res, 200, await replay(ctx, body));
      if (route === 'dead/purge') return json(res, 200, await purge(ctx, body));
      return json(res, 404, { error: `no action ${route}` });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'GET or POST only' });
    switch (route) {
      case 'session':
        return json(res, 200, { namespace: ctx.broker.config.namespace, readOnly: ctx.readOnly, lanes: ctx.broker.config.lanes.map((l) => l.name) });
      case 'overview':
        return json(res, 200, await overview(ctx));
      case 'schedule':
        return json(res, 200, await schedule(ctx));
      case 'config':
        return json(res, 200, configView(ctx.broker.config));
      case 'dead': {
        const which = queueOf(query.get('queue'));
        const page = await ctx.broker.deadLetters((dlq) =>
          readPage(dlq, which, {
            offset: whole(query.get('offset'), 0, 'offset'),
            limit: whole(query.get('limit'), PAGE_DEFAULT, 'limit'),
            id: nonEmpty(query.get('id')),
            lane: nonEmpty(query.get('lane')),
          }),
        );
        return json(res, 200, page);
      }
      case 'dead/message': {
        const which = queueOf(query.get('queue'));
        const id = nonEmpty(query.get('id'));
        if (id === undefined) throw new InvalidMessageError('id is required', { code: 'UI_BAD_REQUEST' });
        const found = await ctx.broker.deadLetters((dlq) => readMessage(dlq, which, id));
        if (found.message === null) {
          return json(res, 404, { error: `no message with id "${id}" among the first ${found.scanned} of the queue`, scanned: found.scanned, truncated: found.truncated });
        }
        return json(res, 200, found);
      }
      case 'dead/count': {
        const which = queueOf(query.get('queue'));
        const filter = { id: nonEmpty(query.get('id')), lane: nonEmpty(query.get('lane')) };
        return json(res, 200, await ctx.broker.deadLetters((dlq) => countMatching(dlq, which, filter)));
      }
      default:
        return json(res, 404, { error: `no endpoint /ui/api/${route}` });
    }
  } catch (err) {
    const status = err instanceof InvalidMessageError ? 400 : 503;
    const code = isOrbitError(err) ? err.code : 'UI_ERROR';
    // ConfigError here is the namespace or its queues as found on the broker (passive look).
    json(res, err instanceof ConfigError ? 503 : status, { error: errorMessage(err), code });
  }
}

async function overview(ctx: ApiContext): Promise<unknown> {
  const [s, rates] = await Promise.all([ctx.broker.snapshot(), ctx.broker.laneRates()]);
  return {
    namespace: s.namespace,
    sampledAt: s.sampledAt,
    rates: rates === undefined ? 'n/a' : 'this daemon',
    lanes: s.lanes.map((l) => {
      const r = rates?.get(l.lane);
      return {
        lane: l.lane,
        ready: l.ready,
        consumers: l.consumers,
        inFlight: rates === undefined ? null : (r?.inFlight ?? 0),
        runsPerSecond: rates === undefined ? null : (r?.runsPerSecond ?? 0),
        failuresPerSecond: rates === undefined ? null : (r?.failuresPerSecond ?? 0),
        meanLatenessSeconds: r?.meanLatenessSeconds ?? null,
        queues: l.queues,
      };
    }),
    dead: s.dead,
    unroutable: s.unroutable,
    alarm: ctx.broker.alarm(),
    stranded: s.stranded,
    // A note for `orbit stats` users; the console shows this daemon's in-flight counts, or n/a.
    notes: s.notes.filter((n) => n !== IN_FLIGHT_NEEDS_URL),
  };
}

async function schedule(ctx: ApiContext): Promise<unknown> {
  const s = await ctx.broker.snapshot();
  const readyNow = s.lanes.reduce((n, l) => n + l.ready, 0);
  const input = { readyNow, levels: s.levels, unitMs: s.unitMs };
  return {
    namespace: s.namespace,
    sampledAt: s.sampledAt,
    tolerance: s.tolerance,
    readyNow,
    levels: s.levels,
    forecast: FORECAST_HORIZONS.map((h) => ({ horizon: h.name, ms: h.ms, messages: Math.round(expectedDueWithin(input, h.ms)) })),
  };
}

async function replay(ctx: ApiContext, body: Record<string, unknown>): Promise<unknown> {
  const which = queueOf(stringField(body, 'queue'));
  const ids = body['ids'];
  if (ids !== undefined) {
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > SELECTED_MAX || !ids.every((id) => typeof id === 'string' && id !== '')) {
      throw new InvalidMessageError(`ids must be 1 to ${SELECTED_MAX} message ids`, { code: 'UI_BAD_REQUEST' });
    }
    // One pass over the head, stopping once as many as were selected are replayed.
    const selected = new Set(ids as string[]);
    const r = await ctx.broker.deadLetters((dlq) => dlq.replay(which, { ids: selected, limit: selected.size, scanLimit: SCAN_MAX }));
    return { ...r, selected: selected.size, scanLimit: SCAN_MAX };
  }
  const filter = filterOf(body);
  // By id, the one opened: stop at the first (a later copy of the id stays, with its own error).
  const limit = filter.id !== undefined ? 1 : undefined;
  const r = await ctx.broker.deadLetters((dlq) => dlq.replay(which, { ...filter, limit, scanLimit: SCAN_MAX }));
  if (filter.id !== undefined && r.replayed === 0 && r.unknownLanes.length === 0) {
    throw new OrbitError('MESSAGE_NOT_FOUND', `no message with id "${filter.id}" among the first ${SCAN_MAX} of the queue; nothing replayed`);
  }
  return { ...r, scanLimit: SCAN_MAX };
}

async function purge(ctx: ApiContext, body: Record<string, unknown>): Promise<unknown> {
  const which = queueOf(stringField(body, 'queue'));
  const filter = filterOf(body);
  if (filter.id === undefined && filter.lane === undefined) {
    // The whole queue: one broker operation, however deep.
    const purged = await ctx.broker.deadLetters((dlq) => dlq.purge(which));
    return { purged, left: 0 };
  }
  const r = await ctx.broker.deadLetters((dlq) => dlq.purgeMatching(which, { ...filter, scanLimit: SCAN_MAX }));
  return { ...r, scanLimit: SCAN_MAX };
}

function filterOf(body: Record<string, unknown>): ReplayFilter {
  return { id: nonEmpty(stringField(body, 'id')), lane: nonEmpty(stringField(body, 'lane')) };
}

function stringField(body: Record<string, unknown>, key: string): string | null {
  const v = body[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new InvalidMessageError(`${key} must be a string`, { code: 'UI_BAD_REQUEST' });
  return v;
}

function queueOf(value: string | null): DeadQueueName {
  if (value === null || value === 'dead') return 'dead';
  if (value === 'unroutable') return 'unroutable';
  throw new InvalidMessageError(`queue must be dead or unroutable (got "${value}")`, { code: 'UI_BAD_REQUEST' });
}

function whole(value: string | null, fallback: number, name: string): number {
  if (value === null || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidMessageError(`${name} must be a whole number ≥ 0 (got "${value}")`, { code: 'UI_BAD_REQUEST' });
  return n;
}

function nonEmpty(value: string | null): string | undefined {
  return value === null || value.trim() === '' ? undefined : value.trim();
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_MAX_BYTES) throw new InvalidMessageError(`request body larger than ${BODY_MAX_BYTES} bytes`, { code: 'UI_BAD_REQUEST' });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidMessageError('request body is not JSON', { code: 'UI_BAD_REQUEST' });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidMessageError('request body must be a JSON object', { code: 'UI_BAD_REQUEST' });
  }
  return parsed as Record<string, unknown>;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(JSON.stringify(body));
}
