/**
 * The hot counters are plain numbers handed to prom-client at collection: what a scrape
 * shows must be exactly what happened, however often it is collected.
 */
import { Metrics } from '../../src/metrics/metrics';

async function value(metric: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> }, labels: Record<string, string>): Promise<number | undefined> {
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

test('settled counts, in-flight level and published counts reach prom-client at every collection, once', async () => {
  const metrics = new Metrics();
  metrics.initLanes([{ name: 'a', concurrency: 5, rateLimit: null }]);
  const worker = metrics.workerObserver();
  const publisher = metrics.publishObserver();
  for (let i = 0; i < 3; i++) worker.handlerStarted!('a', 10, false, undefined);
  worker.messageSettled!('a', 'rescheduled');
  worker.messageSettled!('a', 'rescheduled');
  worker.messageSettled!('a', 'dead');
  worker.messageReleased!('a');
  publisher.published('reschedule', 0.002);
  publisher.published('reschedule', 0.003);

  expect(await value(metrics.messages, { lane: 'a', outcome: 'rescheduled' })).toBe(2);
  expect(await value(metrics.messages, { lane: 'a', outcome: 'dead' })).toBe(1);
  expect(await value(metrics.inFlight, { lane: 'a' })).toBe(2);
  expect(await value(metrics.published, { kind: 'reschedule' })).toBe(2);

  // Collected again: nothing is added twice; new counts add on.
  worker.messageSettled!('a', 'rescheduled');
  worker.messageReleased!('a');
  const text = await metrics.registry.metrics();
  expect(text).toContain('orbit_messages_total{lane="a",outcome="rescheduled"} 3');
  expect(text).toContain('orbit_messages_total{lane="a",outcome="done"} 0');
  expect(text).toContain('orbit_in_flight{lane="a"} 1');
  expect(text).toContain('orbit_published_total{kind="reschedule"} 2');
  expect(await value(metrics.messages, { lane: 'a', outcome: 'rescheduled' })).toBe(3);
});

test('work-ahead is counted through the worker observer: messages taken early and the working-ahead gauge', async () => {
  const metrics = new Metrics();
  metrics.initLanes([{ name: 'a', concurrency: 5, rateLimit: null }]);
  const worker = metrics.workerObserver();
  expect(await value(metrics.workAhead, { lane: 'a' })).toBe(0);
  worker.takenEarly!('a', 1);
  worker.takenEarly!('a', 50); // a bundle counts each of its messages
  worker.workingAhead!('a', true);
  expect(await value(metrics.workAhead, { lane: 'a' })).toBe(51);
  expect(await value(metrics.workAheadActive, { lane: 'a' })).toBe(1);
  worker.workingAhead!('a', false);
  const text = await metrics.registry.metrics();
  expect(text).toContain('orbit_work_ahead_total{lane="a"} 51');
  expect(text).toContain('orbit_work_ahead_active{lane="a"} 0');
});

test('a publish detoured to the rung above counts in orbit_rung_detours_total by its failure code', async () => {
  const metrics = new Metrics();
  const publisher = metrics.publishObserver();
  publisher.detoured!('ns.rung.a', 'ns.rung.b', 'NACKED');
  publisher.detoured!('ns.rung.b', 'ns.rung.c', 'NACKED');
  publisher.detoured!('ns.rung.a', 'ns.rung.b', 'CONFIRM_TIMEOUT');
  const text = await metrics.registry.metrics();
  expect(text).toContain('orbit_rung_detours_total{code="NACKED"} 2');
  expect(text).toContain('orbit_rung_detours_total{code="CONFIRM_TIMEOUT"} 1');
});
