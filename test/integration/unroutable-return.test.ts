/**
 * `worker/unroutable-return.ts` against the real broker: a bundle a rung dead-letters while its
 * lane's binding is missing lands in `<ns>.unroutable` (what a broker restarting after a crash
 * can do: it expires quorum rungs before it has restored the classic lane's bindings, seen on
 * RabbitMQ 4.0 in the fault suite). The daemon of that lane sends its messages back, each with
 * its runs kept; a message of a lane it does not have stays where it was.
 */
import { HEADER } from '../../src/message/headers';
import { buildTopology } from '../../src/topology/build';
import { reschedule } from '../../src';
import { queueDepth, withChannel } from '../helpers/broker';
import { connectTestScheduler, namespaceFor, startTestDaemon } from '../helpers/harness';
import { Cleanup, Recorder } from '../helpers/recorder';
import { waitFor } from '../helpers/wait';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const IDS = 20;
/** Long enough for the first daemon to stop and the binding to go before the rung expires. */
const RESCHEDULE_MS = 8000;

test('a bundle dead-lettered while its lane was unbound goes back to the lane: every message runs again, runs kept; another lane\'s message stays', async () => {
  const { ns, config } = namespaceFor(cleanup, 'unrt', {
    delay: { unit: '10ms', levels: 16, tolerance: 0.05 },
    lanes: [{ name: 'a', concurrency: 20, bundle: { max: 50, linger: '200ms' } }],
  });
  // The lane's bindings from the deliver exchange, as the topology declares them.
  const lane = `${ns}.lane.a`;
  const bindings = buildTopology(config).bindings.filter((b) => b.kind === 'queue' && b.destination === lane);
  expect(bindings.length).toBeGreaterThan(0);

  // First daemon: every message runs once and is rescheduled (bundled) into a rung.
  const first = new Recorder();
  const daemon = await startTestDaemon(cleanup, { config, handlers: { a: first.wrap((m) => (m.runs === 0 ? reschedule({ delay: RESCHEDULE_MS }) : undefined)) } });
  const scheduler = await connectTestScheduler(cleanup, config);
  const ids = Array.from({ length: IDS }, (_, i) => `u-${i}`);
  await Promise.all(ids.map((id) => scheduler.publish('a', { id }, { id })));
  await waitFor(() => first.count >= IDS, 10_000, `${IDS} first runs`);
  const reschedulesDone = Date.now();
  await daemon.stop();

  // The binding goes before the rung expires: what it dead-letters is unroutable.
  await withChannel(async (ch) => {
    for (const b of bindings) await ch.unbindQueue(b.destination, b.source, b.pattern);
  });
  expect(Date.now() - reschedulesDone).toBeLessThan(RESCHEDULE_MS);
  // A message of a lane no daemon of this config has, published straight into unroutable.
  await withChannel(async (ch) => {
    ch.publish(`${ns}.unroutable`, '', Buffer.from('{"ghost":true}'), { messageId: 'ghost-1', persistent: true, headers: { [HEADER.lane]: 'ghost' } });
  });
  await waitFor(async () => (await queueDepth(`${ns}.unroutable`)) >= 2, RESCHEDULE_MS + 10_000, 'the bundle in unroutable');
  const bundles = (await queueDepth(`${ns}.unroutable`)) - 1;
  // Bundled: fewer AMQP messages than messages.
  expect(bundles).toBeLessThan(IDS);
  // The bindings back, as the broker's recovery (or the next daemon's start) restores them.
  await withChannel(async (ch) => {
    for (const b of bindings) await ch.bindQueue(b.destination, b.source, b.pattern);
  });

  // Second daemon: it sees unroutable hold messages of its lane and sends them back.
  const second = new Recorder();
  const secondDaemon = await startTestDaemon(cleanup, { config, handlers: { a: second.wrap() }, queueSampleIntervalMs: 200 });
  await waitFor(() => new Set(second.runs.map((r) => r.id)).size >= IDS, 15_000, `${IDS} messages back from unroutable`);
  expect([...new Set(second.runs.map((r) => r.id))].sort()).toEqual([...ids].sort());
  // Each went on from where it was: its second run (runs kept), not a first one.
  expect(second.runs.every((r) => r.runs === 1)).toBe(true);
  // The other lane's message is still there, alone.
  await waitFor(async () => (await queueDepth(`${ns}.unroutable`)) === 1, 5_000, 'unroutable down to the other lane\'s message');
  const left = await withChannel(async (ch) => {
    const m = await ch.get(`${ns}.unroutable`, { noAck: true });
    return m === false ? undefined : m.properties.messageId;
  });
  expect(left).toBe('ghost-1');
  // Counted for Grafana: each bundle of the lane once; the other lane's message not at all.
  expect(await secondDaemon.metrics.registry.metrics()).toContain(`orbit_unroutable_returned_total ${bundles}\n`);
}, 60_000);
