/**
 * FastHistogram must be indistinguishable from prom-client's Histogram at a scrape: same
 * exposition lines for the same observations, labelled or not.
 */
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../../src/metrics/fast-histogram';

const BUCKETS = [0.005, 0.1, 1, 10];
const VALUES = [0, 0.005, 0.0051, 0.1, 0.5, 1, 9.99, 10, 10.01, 1e6];

/** Exposition lines, sorted, each with its labels in a fixed order. */
function lines(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^([^{ ]+)(?:\{([^}]*)\})? (.*)$/.exec(l)!;
      const labels = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
      return `${m[1]}{${labels}} ${m[3]}`;
    })
    .sort();
}

test('labelled: the same lines as prom-client for the same observations', async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'h_seconds', help: 'h', labelNames: ['lane'], buckets: BUCKETS, registers: [theirs] });
  const fast = new FastHistogram({ name: 'h_seconds', help: 'h', labelName: 'lane', buckets: BUCKETS, registry: ours });
  for (const [i, v] of VALUES.entries()) {
    const lane = i % 3 === 0 ? 'a' : 'b';
    reference.observe({ lane }, v);
    fast.labels(lane).observe(v);
  }
  expect(lines(await ours.metrics())).toEqual(lines(await theirs.metrics()));
  expect(await ours.metrics()).toContain('# TYPE h_seconds histogram');
  const json = await ours.getMetricsAsJSON();
  expect(json[0]).toMatchObject({ name: 'h_seconds', type: 'histogram' });
});

test('unlabelled, and reset', async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'c_seconds', help: 'c', buckets: BUCKETS, registers: [theirs] });
  const fast = new FastHistogram({ name: 'c_seconds', help: 'c', buckets: BUCKETS, registry: ours });
  for (const v of VALUES) {
    reference.observe(v);
    fast.observe(v);
  }
  expect(lines(await ours.metrics())).toEqual(lines(await theirs.metrics()));
  ours.resetMetrics();
  expect(lines(await ours.metrics())).toEqual([]);
});
