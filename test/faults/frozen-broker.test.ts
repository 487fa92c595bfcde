/**
 * Fault: the broker stops answering (SIGSTOP of a private node's beam process: a hung node, or
 * a network that drops everything) and the daemon is told to stop meanwhile, as systemd or
 * Kubernetes would on a deploy. No socket closes, so nothing tells the client the broker is
 * gone; every call waits.
 *
 * The stop must still end within its budget (`shutdown.timeout` for the handlers, then
 * bounded cancels and closes), not after the broker's TCP timeouts, and it must cost nothing:
 * once the node goes on (SIGCONT), every message is still there, and a second daemon runs
 * each to the end.
 */
import pino from 'pino';
import { Daemon } from '../../src';
import { STOP_CLOSE_BUDGET_MS } from '../../src/daemon';
import { within } from '../../src/amqp/within';
import { randomNamespace, testConfig } from '../helpers/broker';
import { type PrivateBroker, startPrivateBroker } from '../helpers/private-broker';
import { describeFaults, expectIds, MemoryAudit, tally } from './audit';
import { publishAll } from './util';
import { sleep, waitFor } from '../helpers/wait';

const MESSAGES = 200;
const TOTAL = 3;
const SHUTDOWN_MS = 2000;
/**
 * What the stop may take with a broker that answers nothing. The budget it is built to
 * (`Daemon.doStop`): `shutdown.timeout` from the stop for the cancels and the drain, then
 * STOP_CLOSE_BUDGET_MS for every close together, then each of the two connections' closes
 * gets 0.5 s at least before its socket is cut: 8 s. The margin, 4 s, is for a loaded machine
 * (the steps between those waits take milliseconds). Before the budget the stop took 37 s here.
 */
const STOP_BUDGET_MS = SHUTDOWN_MS + STOP_CLOSE_BUDGET_MS + 2 * 500 + 4000;

describeFaults('fault: the broker stops answering while the daemon stops (private node, SIGSTOP)', () => {
  let broker: PrivateBroker | undefined;

  beforeAll(async () => {
    broker = await startPrivateBroker(90_000);
  }, 120_000);

  afterAll(async () => {
    await broker?.stop();
  }, 60_000);

  test('the stop ends within its budget; after SIGCONT every message is still there and a new daemon runs each to the end', async () => {
    const b = broker!;
    const ns = randomNamespace('ffrozen');
    // The shipped defaults (quorum rungs at 2 %, bundles), on the private node.
    const config = testConfig(ns, { amqp: { url: b.url, reconnect: '500ms' }, shutdown: { timeout: `${SHUTDOWN_MS}ms` }, lanes: [{ name: 'work', concurrency: 20 }] }, { defaults: 'shipped' });
    const audit = new MemoryAudit();
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
    const handlers = { work: audit.handler({ total: TOTAL, delayMs: () => 1000 + Math.floor(Math.random() * 1000), sleepMs: () => 5 + Math.random() * 20 }) };
    const expected = expectIds('f', MESSAGES, TOTAL);
    const first = new Daemon({ config, logger, handlers });
    let second: Daemon | undefined;
    try {
      await first.start();
      expect(await publishAll(config, 'work', expected.keys())).toHaveLength(MESSAGES);
      await waitFor(() => audit.ends >= MESSAGES, 60_000, 'every message to run once');

      b.freeze();
      const began = Date.now();
      await within(first.stop(), 120_000, () => new Error('the stop did not end in 120 s'));
      const stopMs = Date.now() - began;
      const steps = lines.map((l) => JSON.parse(l) as { msg: string; step?: string; ms?: number }).filter((l) => l.step !== undefined && l.ms !== undefined);
      process.stdout.write(`FAULT-INFO frozen broker: stop took ${stopMs} ms; steps ${steps.map((s) => `${s.step} ${s.ms}`).join(', ')}\n`);
      expect(stopMs).toBeLessThanOrEqual(STOP_BUDGET_MS);

      b.thaw();
      second = new Daemon({ config, logger: pino({ level: 'silent' }), handlers });
      await second.start();
      await waitFor(() => tally(expected, audit.events).lost === 0, 90_000, 'every run to complete after the thaw');
      await sleep(500);
    } finally {
      b.thaw();
      await second?.stop();
      await first.stop();
    }
  }, 300_000);
});
