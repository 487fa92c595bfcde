/**
 * The human screen of `orbit stats`: compact aligned tables. Pure: snapshot in, text out.
 */
import { formatDuration } from '../config/durations';
import type { LaneWorkAhead, StatsSnapshot } from './collect';

const STEPS_MS = [86_400_000, 3_600_000, 60_000, 1_000, 1] as const;

/**
 * A duration in at most its two largest units, the second rounded to the nearest whole:
 * 3000 → "3s", 4095000 → "1h8m", 8191000 → "2h17m", 127000 → "2m7s", 1500 → "1s500ms".
 */
export function shortDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot format duration ${ms}`);
  const i = STEPS_MS.findIndex((step) => ms >= step);
  if (i < 0) return formatDuration(ms);
  const next = STEPS_MS[i + 1];
  if (next === undefined) return formatDuration(Math.round(ms));
  return formatDuration(Math.round(ms / next) * next);
}

export interface RenderOptions {
  /** Show every delay level, not only the non-empty ones. */
  readonly allLevels?: boolean;
}

type Align = 'left' | 'right';

/** Rows under a header, columns two spaces apart; the last column is never padded. */
function table(header: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => {
        const last = i === cells.length - 1;
        if (align[i] === 'right') return c.padStart(widths[i]!);
        return last ? c : c.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const count = (n: number | null): string => (n === null ? '-' : String(n));

/** The WORK-AHEAD column: how early an idle lane may run delayed messages, or `off`. */
function workAheadSetting(w: LaneWorkAhead): string {
  return w.enabled ? `≤ ${shortDuration(w.maxAdvanceMs)} early` : 'off';
}

/** The RUN EARLY column: messages run early since the daemons started, `now` while any works ahead; `-` unknown. */
function runEarly(w: LaneWorkAhead): string {
  if (w.taken === null) return '-';
  return (w.activeDaemons ?? 0) > 0 ? `${w.taken} (now)` : String(w.taken);
}

/** What the two work-ahead columns mean, when a lane has it on: its runs come early, on purpose. */
function workAheadLegend(s: StatsSnapshot): string[] {
  const on = s.lanes.filter((l) => l.workAhead.enabled);
  if (on.length === 0) return [];
  const idle = [...new Set(on.map((l) => shortDuration(l.workAhead.idleMs)))].join('/');
  const lines = [
    `work-ahead: a lane idle for ${idle} (free capacity, no delivery) runs delayed messages early, up to`,
    'WORK-AHEAD before they are due (flagged message.early), so runs may come sooner than scheduled.',
  ];
  lines.push(
    on.some((l) => l.workAhead.taken !== null)
      ? 'RUN EARLY: messages run early since each daemon started; (now): a daemon is working ahead.'
      : 'RUN EARLY needs --metrics-url <daemon /metrics URL>.',
  );
  return lines;
}

export function renderStats(s: StatsSnapshot, options: RenderOptions = {}): string {
  const out: string[] = [];
  out.push(`orbit stats  namespace ${s.namespace}  unit ${formatDuration(s.unitMs)}  sampled ${s.sampledAt}`, '');

  if (s.lanes.length === 0) out.push('no lanes configured');
  else {
    out.push(
      ...table(
        ['LANE', 'READY', 'IN-FLIGHT', 'CONSUMERS', 'WORK-AHEAD', 'RUN EARLY'],
        s.lanes.map((l) => [l.lane, count(l.ready), count(l.inFlight), count(l.consumers), workAheadSetting(l.workAhead), runEarly(l.workAhead)]),
        ['left', 'right', 'right', 'right', 'left', 'left'],
      ),
    );
    out.push(...workAheadLegend(s));
  }
  out.push('');

  const shown = options.allLevels ? s.levels : s.levels.filter((l) => l.messages > 0);
  const hidden = s.levels.length - shown.length;
  if (s.tolerance > 0) {
    // The ladder: one row per rung that exists (and per binary level an earlier layout left).
    const rungs = s.levels.filter((l) => l.level === undefined).length;
    const own = Object.entries(s.laneTolerances ?? {}).map(([lane, t]) => `lane ${lane} ${+(t * 100).toFixed(4)}%`);
    const tolerances = `tolerance ${+(s.tolerance * 100).toFixed(4)}%${own.length > 0 ? ` (${own.join(', ')})` : ''}`;
    out.push(`DELAY LADDER  ${tolerances}  ${rungs} rung queue${rungs === 1 ? '' : 's'} in use of ${s.ladderRungs ?? '?'}`);
    if (shown.length > 0)
      out.push(
        ...table(
          ['QUEUE', 'MESSAGES', 'DUE WITHIN'],
          shown.map((l) => [l.queue, String(l.messages), `≤ ${shortDuration(l.dueWithinMs)}`]),
          ['left', 'right', 'left'],
        ),
      );
    if (hidden > 0) out.push(`(${hidden} empty queue${hidden === 1 ? '' : 's'} not shown; --all shows every one)`);
  } else if (shown.length === 0) {
    out.push(`DELAY LEVELS  all ${s.levels.length} empty`);
  } else {
    out.push(
      ...table(
        ['LEVEL', 'MESSAGES', 'DUE WITHIN', 'TTL'],
        shown.map((l) => [String(l.level), String(l.messages), `≤ ${shortDuration(l.dueWithinMs)}`, shortDuration(l.ttlMs)]),
        ['right', 'right', 'left', 'left'],
      ),
    );
    if (hidden > 0) out.push(`(${hidden} empty level${hidden === 1 ? '' : 's'} not shown; --all shows every level)`);
  }
  out.push('');

  const ready = s.lanes.reduce((n, l) => n + l.ready, 0);
  const delayed = s.levels.reduce((n, l) => n + l.messages, 0);
  const inFlight = s.lanes.some((l) => l.inFlight === null) ? null : s.lanes.reduce((n, l) => n + (l.inFlight ?? 0), 0);
  out.push(
    ...table(
      ['TOTAL', 'MESSAGES'],
      [
        ['ready', String(ready)],
        ['in-flight', count(inFlight)],
        ['delayed', String(delayed)],
        ['dead', String(s.dead)],
        ['unroutable', String(s.unroutable)],
      ],
      ['left', 'right'],
    ),
    '',
  );

  if (s.stranded.length > 0) {
    out.push(
      'STRANDED LANES  not in the config, nothing consumes them: move with `orbit lanes move --from LANE --to LANE`',
      ...table(
        ['LANE', 'QUEUE', 'MESSAGES'],
        s.stranded.map((q) => [q.lane, q.queue, String(q.messages)]),
        ['left', 'left', 'right'],
      ),
      '',
    );
  }

  out.push(
    ...table(
      ['DUE WITHIN', 'MESSAGES (estimate)'],
      [
        ['1 minute', `~${s.forecast.minute}`],
        ['1 hour', `~${s.forecast.hour}`],
        ['1 day', `~${s.forecast.day}`],
      ],
      ['left', 'right'],
    ),
    'estimate: ready messages are due now; each delay queue is assumed to fill at a steady rate, so its',
    'messages are spread over their wait in it (and, on the binary levels, the lower levels after it).',
    'Just after a bulk publish (orbit seed) the short horizons read high: up to 2 × on the binary levels.',
  );

  if (s.notes.length > 0) out.push('', ...s.notes.map((n) => `note: ${n}`));
  return `${out.join('\n')}\n`;
}
