import { Daemon, Scheduler } from '../../src';
import { deleteNamespace, queueDepth, randomNamespace, testConfig } from '../helpers/broker';
import { waitFor } from '../helpers/wait';

/** A lane with 4 partitions: spread over every queue, each message once, reschedules kept, metrics per lane. */
test('a partitioned lane spreads, processes each message once, reschedules, and aggregates metrics', async () => {
  const ns = randomNamespace('part');
  const config = testConfig(ns, { lanes: [{ name: 'p', concurrency: 20, partitions: 4 }] });
  const scheduler = new Scheduler({ config });
  const runs = new Map<string, number[]>();
  let daemon: Daemon | undefined;
  try {
    const N = 200;
    for (let i = 0; i < N; i++) await scheduler.publish('p', { i }, { id: `m-${i}` });
    // Before any consumer: every partition queue holds part of the messages.
    await waitFor(async () => {
      const depths = await Promise.all([0, 1, 2, 3].map((p) => queueDepth(`${ns}.lane.p.${p}`)));
      return depths.reduce((a, b) => a + b, 0) === N;
    }, 10_000, 'all messages in the partition queues');
    const depths = await Promise.all([0, 1, 2, 3].map((p) => queueDepth(`${ns}.lane.p.${p}`)));
    for (const d of depths) expect(d).toBeGreaterThan(N / 8);

    daemon = new Daemon({
      config,
      handlers: {
        p: (m) => {
          const list = runs.get(m.id) ?? [];
          list.push(m.runs);
          runs.set(m.id, list);
          return m.runs === 0 ? { reschedule: { delay: 1000 } } : undefined;
        },
      },
    });
    await daemon.start();
    await waitFor(() => [...runs.values()].filter((r) => r.length === 2).length === N, 20_000, 'two runs each');
    await new Promise((r) => setTimeout(r, 500));
    for (const [, r] of runs) expect(r).toEqual([0, 1]);
    expect(runs.size).toBe(N);

    const text = await daemon.metrics.registry.getSingleMetricAsString('orbit_messages_total');
    expect(text).toContain(`orbit_messages_total{lane="p",outcome="done"} ${N}`);
    expect(text).toContain(`orbit_messages_total{lane="p",outcome="rescheduled"} ${N}`);
  } finally {
    await scheduler.close();
    await daemon?.stop();
    await deleteNamespace(ns);
  }
}, 60_000);
