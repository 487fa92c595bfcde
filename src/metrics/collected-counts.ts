import type { Counter, LabelValues } from 'prom-client';

/** One label set's count since the last collection. The caller holds it, so counting is one add. */
export class CountSeries<L extends string> {
  /** Counted and not yet handed to prom-client. */
  pending = 0;

  constructor(readonly labels: LabelValues<L>) {}

  inc(by = 1): void {
    this.pending += by;
  }
}

/**
 * Counts for a prom-client `Counter`, kept in plain numbers and handed to it when it is
 * collected (at every scrape), so a scrape shows exactly what happened however often it runs.
 *
 * Why: a prom-client `inc()` converts and hashes its labels on every call, and orbit's hot
 * counters run several times per message — tens of thousands of times a second on a bundled
 * lane. Here the caller looks its series up once (`series`) and counts with `inc`; the
 * counter's `collect` hook calls `collectInto`. The histogram counterpart is `FastHistogram`.
 */
export class CollectedCounts<L extends string> {
  private readonly all = new Map<string, CountSeries<L>>();

  /** The series of one label set, created on first use (not on the hot path: hold it). */
  series(labels: LabelValues<L>): CountSeries<L> {
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    let s = this.all.get(key);
    if (!s) {
      s = new CountSeries<L>(labels);
      this.all.set(key, s);
    }
    return s;
  }

  /** Adds what every series counted since the last call to `counter` (from its `collect` hook). */
  collectInto(counter: Counter<L>): void {
    for (const s of this.all.values()) {
      if (s.pending === 0) continue;
      counter.inc(s.labels, s.pending);
      s.pending = 0;
    }
  }
}
