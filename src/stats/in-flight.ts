/**
 * In-flight counts for `orbit stats`. AMQP reports a queue's ready messages and consumers
 * but not its unacked ones, so in-flight comes from the daemons' own `/metrics`
 * (`orbit_in_flight{lane="…"}`), summed over every daemon the operator names. Work-ahead
 * happens inside the daemons too, so the same scrape reads `orbit_work_ahead_total` and
 * `orbit_work_ahead_active`.
 */
import { errnoCode, InvalidMessageError } from '../errors';

/** A lane's work-ahead as the daemons report it, summed over the daemons that answered. */
export interface WorkAheadReport {
  /** Messages run early since each daemon started (`orbit_work_ahead_total`). */
  readonly taken: number;
  /** Daemons working ahead for this lane right now (`orbit_work_ahead_active`). */
  readonly activeDaemons: number;
}

/** What the daemons reported: in-flight per lane, or null when none could be asked. */
export interface InFlightReport {
  /** Sum over the reachable daemons, per lane; null when no URL was given or none answered. */
  readonly byLane: ReadonlyMap<string, number> | null;
  /** Work-ahead per lane, on the same terms; absent or null when unknown. */
  readonly workAhead?: ReadonlyMap<string, WorkAheadReport> | null;
  /** Human-readable remarks (no URL given, a daemon unreachable, …). */
  readonly notes: readonly string[];
}

const LANE_LABEL = /(?:^|,)\s*lane\s*=\s*"((?:[^"\\]|\\.)*)"/;

/**
 * Parses `orbit_in_flight{lane="x"} N` samples of a Prometheus text exposition into lane → N.
 * Other metrics, comments and samples without a lane label are ignored; repeated samples of
 * one lane (different other labels) are added up.
 */
export function parseInFlight(text: string): Map<string, number> {
  return parseLaneSamples(text, 'orbit_in_flight');
}

/** `orbit_work_ahead_total` and `orbit_work_ahead_active` per lane; a lane with either is listed. */
export function parseWorkAhead(text: string): Map<string, WorkAheadReport> {
  const taken = parseLaneSamples(text, 'orbit_work_ahead_total');
  const active = parseLaneSamples(text, 'orbit_work_ahead_active');
  const out = new Map<string, WorkAheadReport>();
  for (const lane of new Set([...taken.keys(), ...active.keys()])) out.set(lane, { taken: taken.get(lane) ?? 0, activeDaemons: active.get(lane) ?? 0 });
  return out;
}

/** Samples of the metric `name` (a Prometheus metric name: no regex characters) per lane, as `parseInFlight`. */
export function parseLaneSamples(text: string, name: string): Map<string, number> {
  const sample = new RegExp(`^${name}(?:\\{([^}]*)\\})?\\s+(\\S+)`);
  const out = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const m = sample.exec(raw.trim());
    if (!m) continue;
    const lane = LANE_LABEL.exec(m[1] ?? '')?.[1];
    const value = Number(m[2]);
    if (lane === undefined || !Number.isFinite(value)) continue;
    const name = lane.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.set(name, (out.get(name) ?? 0) + value);
  }
  return out;
}

/**
 * Checks a `--metrics-url`: http(s) only; a URL without a path means the daemon's `/metrics`.
 * @throws InvalidMessageError when it is not an http(s) URL
 */
export function metricsUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidMessageError(`--metrics-url must be an http(s) URL (got "${text}")`, { code: 'BAD_METRICS_URL' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidMessageError(`--metrics-url must be an http(s) URL (got "${text}")`, { code: 'BAD_METRICS_URL' });
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/metrics';
  return url;
}

/** The URL as shown in notes: any password replaced. */
function shown(url: URL): string {
  if (!url.password) return url.href;
  const copy = new URL(url.href);
  copy.password = '***';
  return copy.href;
}

/** The note when no daemon's /metrics was given: the console, which has its own numbers, leaves it out. */
export const IN_FLIGHT_NEEDS_URL = 'in-flight needs --metrics-url <daemon /metrics URL> (AMQP does not report unacked messages)';

/** Fetches every URL (in parallel, each bounded by `timeoutMs`) and sums their in-flight counts. */
export async function scrapeInFlight(urls: readonly URL[], timeoutMs = 2000): Promise<InFlightReport> {
  if (urls.length === 0) {
    return { byLane: null, notes: [IN_FLIGHT_NEEDS_URL] };
  }
  const results = await Promise.all(
    urls.map(async (url) => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'text/plain' } });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const text = await res.text();
        return { url, lanes: parseInFlight(text), workAhead: parseWorkAhead(text) };
      } catch (err) {
        const reason = err instanceof Error ? (err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : causeOf(err)) : String(err);
        return { url, error: reason };
      }
    }),
  );
  const notes: string[] = [];
  const byLane = new Map<string, number>();
  const workAhead = new Map<string, WorkAheadReport>();
  let reached = 0;
  for (const r of results) {
    if ('error' in r) {
      notes.push(`in-flight: ${shown(r.url)} unreachable (${r.error})`);
      continue;
    }
    reached++;
    for (const [lane, n] of r.lanes) byLane.set(lane, (byLane.get(lane) ?? 0) + n);
    for (const [lane, w] of r.workAhead) {
      const sum = workAhead.get(lane) ?? { taken: 0, activeDaemons: 0 };
      workAhead.set(lane, { taken: sum.taken + w.taken, activeDaemons: sum.activeDaemons + w.activeDaemons });
    }
  }
  if (reached === 0) return { byLane: null, workAhead: null, notes };
  if (reached < urls.length) notes.push(`in-flight counts only the ${reached} of ${urls.length} daemon(s) that answered`);
  return { byLane, workAhead, notes };
}

/** fetch wraps network errors as "fetch failed" with the useful part in `cause`. */
function causeOf(err: Error): string {
  const cause = (err as Error & { cause?: unknown }).cause;
  if (cause instanceof Error) return String(errnoCode(cause) ?? cause.message);
  return err.message;
}
