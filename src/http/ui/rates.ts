import type { Registry } from 'prom-client';

/** One lane's rates over the last interval, from this daemon's own metrics. */
export interface LaneRates {
  /** Messages settled per second (any outcome). */
  readonly runsPerSecond: number;
  /** Retried or dead-lettered per second. */
  readonly failuresPerSecond: number;
  /** Mean lateness (run start minus due time) of the runs in the interval, seconds; null when none ran. */
  readonly meanLatenessSeconds: number | null;
  /** Handlers running now. */
  readonly inFlight: number;
}

interface Totals {
  readonly at: number;
  readonly runs: Map<string, number>;
  readonly failures: Map<string, number>;
  readonly latenessSum: Map<string, number>;
  readonly latenessCount: Map<string, number>;
  readonly inFlight: Map<string, number>;
  readonly blocked: string[];
}

/** Rates need two readings this far apart at least; closer readings reuse the last rates. */
const MIN_INTERVAL_MS = 1000;

/**
 * Rates of a daemon's lanes, from its metrics registry: each reading is compared with the
 * previous one (the counters only grow). The broker knows depths but not rates, so a console
 * without a daemon (`orbit ui`) has none, and a daemon's console shows its own.
 */
export class RateMeter {
  private last: Totals | undefined;
  private rates = new Map<string, LaneRates>();
  /** This daemon's connections the broker blocks (`orbit_amqp_blocked`), at the last reading. */
  blocked: readonly string[] = [];

  constructor(private readonly registry: Registry) {}

  async read(now = Date.now()): Promise<ReadonlyMap<string, LaneRates>> {
    if (this.last && now - this.last.at < MIN_INTERVAL_MS) return this.rates;
    const current = await this.totals(now);
    this.blocked = current.blocked;
    const previous = this.last;
    this.last = current;
    const rates = new Map<string, LaneRates>();
    const lanes = new Set([...current.runs.keys(), ...current.inFlight.keys()]);
    for (const lane of lanes) {
      const seconds = previous ? (now - previous.at) / 1000 : 0;
      const delta = (m: keyof Omit<Totals, 'at' | 'blocked'>) => (current[m].get(lane) ?? 0) - (previous?.[m].get(lane) ?? 0);
      const count = delta('latenessCount');
      rates.set(lane, {
        runsPerSecond: seconds > 0 ? delta('runs') / seconds : 0,
        failuresPerSecond: seconds > 0 ? delta('failures') / seconds : 0,
        meanLatenessSeconds: previous && count > 0 ? delta('latenessSum') / count : null,
        inFlight: current.inFlight.get(lane) ?? 0,
      });
    }
    this.rates = rates;
    return rates;
  }

  private async totals(at: number): Promise<Totals> {
    const t: Totals = { at, runs: new Map(), failures: new Map(), latenessSum: new Map(), latenessCount: new Map(), inFlight: new Map(), blocked: [] };
    const add = (m: Map<string, number>, lane: unknown, v: number) => {
      if (typeof lane !== 'string') return;
      m.set(lane, (m.get(lane) ?? 0) + v);
    };
    for (const metric of await this.registry.getMetricsAsJSON()) {
      for (const sample of metric.values) {
        const labels = sample.labels as Record<string, unknown>;
        const name = (sample as { metricName?: string }).metricName ?? metric.name;
        if (name === 'orbit_messages_total') {
          add(t.runs, labels['lane'], sample.value);
          if (labels['outcome'] === 'retried' || labels['outcome'] === 'dead') add(t.failures, labels['lane'], sample.value);
        } else if (name === 'orbit_lateness_seconds_sum') add(t.latenessSum, labels['lane'], sample.value);
        else if (name === 'orbit_lateness_seconds_count') add(t.latenessCount, labels['lane'], sample.value);
        else if (name === 'orbit_in_flight') add(t.inFlight, labels['lane'], sample.value);
        else if (name === 'orbit_amqp_blocked' && sample.value > 0) t.blocked.push(String(labels['connection'] ?? '?'));
      }
    }
    return t;
  }
}
