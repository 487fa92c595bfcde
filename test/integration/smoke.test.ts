import { Daemon, Scheduler } from '../../src';
import { deleteNamespace, randomNamespace, testConfig } from '../helpers/broker';
import { waitFor } from '../helpers/wait';

test('a published message runs and is rescheduled once', async () => {
  const ns = randomNamespace();
  const config = testConfig(ns, { lanes: [{ name: 'a', concurrency: 2 }] });
  const seen: number[] = [];
  const daemon = new Daemon({
    config,
    handlers: { a: async (m) => { seen.push(m.runs); return m.runs === 0 ? { reschedule: { delay: 1000 } } : undefined; } },
  });
  const scheduler = new Scheduler({ config });
  try {
    await daemon.start();
    await scheduler.publish('a', { x: 1 });
    await waitFor(() => seen.length === 2, 10000, 'two runs');
    expect(seen).toEqual([0, 1]);
  } finally {
    await scheduler.close();
    await daemon.stop();
    await deleteNamespace(ns);
  }
});
