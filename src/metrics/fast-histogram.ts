import type { Histogram, Registry } from 'prom-client';

/** One label set's buckets. `observe` allocates nothing: a scan of a few bounds and three adds. */
export class HistogramSeries {
  /** Non-cumulative count per bound (the last slot is above every bound). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

interface Sample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName: string;
}

export interface FastHistogramOptions {
  readonly name: string;
  readonly help: string;
  /** Upper bounds, ascending. */
  readonly buckets: readonly number[];
  /** The one label, if any (orbit's hot histograms are per lane or unlabelled). */
  readonly labelName?: string;
  readonly registry: Registry;
}

/**
 * A Prometheus histogram for the per-message hot path, exposed through a prom-client
 * registry exactly as a prom-client `Histogram` would be (`_bucket{le}`, `_sum`, `_count`).
 *
 * prom-client's `observe` converts, validates and hashes the labels on every call (≈ 10 %
 * of a bundled lane's client CPU with three observations per message, docs/BENCHMARKS.md);
 * here the caller holds the series for its label value and an observation is a few
 * arithmetic operations. The registry accepts any object with prom-client's metric shape
 * (`name`, `help`, `type`, `aggregator`, `get`, `reset`); its TypeScript signature names only
 * its own classes, hence the one cast in the constructor.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  private readonly bounds: readonly number[];
  private readonly labelName: string | undefined;
  private readonly series = new Map<string, HistogramSeries>();

  constructor(options: FastHistogramOptions) {
    this.name = options.name;
    this.help = options.help;
    this.bounds = [...options.buckets].sort((a, b) => a - b);
    this.labelName = options.labelName;
    options.registry.registerMetric(this as unknown as Histogram);
  }

  /** The series of one label value (of the unlabelled histogram when there is no label). */
  labels(value = ''): HistogramSeries {
    let s = this.series.get(value);
    if (!s) {
      s = new HistogramSeries(this.bounds);
      this.series.set(value, s);
    }
    return s;
  }

  observe(value: number): void {
    this.labels().observe(value);
  }

  reset(): void {
    this.series.clear();
  }

  /** What the registry reads at every scrape: prom-client's histogram format. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [labelValue, s] of this.series) {
      const own: Record<string, string> = this.labelName === undefined ? {} : { [this.labelName]: labelValue };
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { ...own, le }, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { ...own, le: '+Inf' }, value: s.count, metricName: bucket });
      values.push({ labels: own, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: own, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
