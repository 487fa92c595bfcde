import { Counter, Registry } from 'prom-client';
import { CollectedCounts } from '../../src/metrics/collected-counts';

test('counts are plain numbers until collection, then added to the counter once per label set', async () => {
  const counts = new CollectedCounts<'lane' | 'outcome'>();
  const counter: Counter<'lane' | 'outcome'> = new Counter({
    name: 'c_total',
    help: 'h',
    labelNames: ['lane', 'outcome'],
    registers: [new Registry()],
    collect: () => counts.collectInto(counter),
  });
  const a = counts.series({ lane: 'a', outcome: 'done' });
  // Label order does not make another series.
  expect(counts.series({ outcome: 'done', lane: 'a' })).toBe(a);
  a.inc();
  a.inc(4);
  counts.series({ lane: 'b', outcome: 'dead' }).inc();
  const first = (await counter.get()).values.map((v) => [v.labels.lane, v.value]);
  expect(first).toEqual([
    ['a', 5],
    ['b', 1],
  ]);
  expect(a.pending).toBe(0);
  a.inc();
  const second = (await counter.get()).values.map((v) => [v.labels.lane, v.value]);
  expect(second).toEqual([
    ['a', 6],
    ['b', 1],
  ]);
});
