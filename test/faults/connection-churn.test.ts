/**
 * Fault: the daemon's connections are force-closed again and again during a run, on a
 * private node (no other client is on it): all of them at once (`rabbitmqctl
 * close_all_connections`), or only the consume connection (`rabbitmqctl close_connection`
 * by the name orbit gives it), which leaves the publish side up while deliveries are cut.
 *
 * Lost = 0, and afterwards nothing leaked: the broker lists exactly the daemon's two
 * connections with the channels it had before the churn, and none once it stopped.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Daemon } from '../../src';
import { randomNamespace, testConfig } from '../helpers/broker';
import { privateBrokerForFile } from '../helpers/private-broker';
import { describeFaults, expectIds, firstStartAfter, MemoryAudit, report, result, tally } from './audit';
import { depthsAt, parseConnections, publishAll, topologyQueues } from './util';
import { sleep, waitFor } from '../helpers/wait';

const LEVELS = 6;
const CONCURRENCY = 20;

describeFaults('fault: connection churn (private node)', () => {
  const node = privateBrokerForFile();

  /** The broker's connections (name, channels, pid) and its total channel count, from rabbitmqctl. */
  async function census() {
    const b = node();
    const conns = parseConnections(await b.ctl('-q', 'list_connections', 'pid', 'client_properties', 'channels', '--no-table-headers'));
    const channels = (await b.ctl('-q', 'list_channels', 'pid', '--no-table-headers')).split('\n').filter((l) => l.trim() !== '').length;
    conns.sort((a, c) => String(a.name).localeCompare(String(c.name)));
    return { connections: conns.map(({ name, channels: n }) => ({ name, channels: n })), pids: conns.map((c) => ({ name: c.name, pid: c.pid })), channels };
  }

  async function churn(mode: 'all' | 'consume') {
    const b = node();
    const ns = randomNamespace('fchurn');
    const logFile = join(tmpdir(), `${ns}.log`);
    const MESSAGES = 800;
    const TOTAL = 6;
    const CLOSES = 5;
    const config = testConfig(ns, {
      amqp: { url: b.url, reconnect: '300ms', heartbeat: '5s', publishTimeout: '5s' },
      delay: { unit: '100ms', levels: LEVELS },
      shutdown: { timeout: '5s' },
      lanes: [{ name: 'work', concurrency: CONCURRENCY }],
    });
    const audit = new MemoryAudit();
    const daemon = new Daemon({
      config,
      // The daemon's log goes to a file, for a failed run to explain itself.
      logger: pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true })),
      handlers: { work: audit.handler({ total: TOTAL, delayMs: 2000, sleepMs: () => 20 + Math.random() * 40 }) },
    });
    const expected = expectIds(`c${mode}`, MESSAGES, TOTAL);
    const began = Date.now();
    const recoveries: number[] = [];
    const closedPerRound: number[] = [];
    let baseline: Awaited<ReturnType<typeof census>> | undefined;
    let after: Awaited<ReturnType<typeof census>> | undefined;
    try {
      await daemon.start();
      await waitFor(() => daemon.readiness().ready, 10_000, 'ready');
      baseline = await census();
      expect(await publishAll(config, 'work', expected.keys())).toHaveLength(MESSAGES);

      for (let k = 0; k < CLOSES; k++) {
        await waitFor(() => daemon.readiness().ready && daemon.inFlight > 0, 20_000, `work in flight before close #${k + 1}`, 10);
        // One rabbitmqctl call per round (each costs a CLI VM start): the connections only.
        const now = parseConnections(await b.ctl('-q', 'list_connections', 'pid', 'client_properties', 'channels', '--no-table-headers'));
        const mine = now.filter((c) => c.name?.startsWith(`orbit:${ns}:`));
        if (mode === 'all') {
          await b.ctl('close_all_connections', 'fault suite: connection churn');
          closedPerRound.push(mine.length);
        } else {
          const consume = mine.filter((c) => c.name === `orbit:${ns}:consume`);
          for (const c of consume) await b.ctl('close_connection', c.pid, 'fault suite: consume connection churn');
          closedPerRound.push(consume.length);
        }
        const closedAt = Date.now();
        if (tally(expected, audit.events).lost === 0) break; // the work finished while rabbitmqctl ran
        await waitFor(() => firstStartAfter(audit.events, closedAt) !== undefined, 20_000, `handlers to run after close #${k + 1}`, 10).catch(async (err: Error) => {
          const depths = await depthsAt(b.url, topologyQueues(config, ['work'])).catch((e: Error) => e.message);
          throw new Error(
            `${err.message}; readiness ${JSON.stringify(daemon.readiness())}, inFlight ${daemon.inFlight}, ` +
              `depths ${JSON.stringify(depths)}, census ${JSON.stringify(await census())}, log ${logFile}`,
          );
        });
        recoveries.push(firstStartAfter(audit.events, closedAt)!.t - closedAt);
      }
      await waitFor(() => tally(expected, audit.events).lost === 0, 90_000, 'every message to complete every run', 100);
      const queues = topologyQueues(config, ['work']);
      await waitFor(async () => daemon.inFlight === 0 && Object.values(await depthsAt(b.url, queues)).every((n) => n === 0), 30_000, 'queues to drain', 250);
      await sleep(1500); // channel reopen timers, late redeliveries
      // A leak stays; a channel in passing goes: the daemon's rung discovery (every 30 s) probes
      // the ladder on 4 channels of its own for a moment, and a census that met it once counted
      // 4 more (CI-like run, 4.0). So the census is taken again, for up to 10 s, until it shows
      // the baseline; what is left then is asserted below.
      after = await census();
      const lookedFrom = Date.now();
      const shape = (c: Awaited<ReturnType<typeof census>>) => JSON.stringify([c.connections, c.channels]);
      while (shape(after) !== shape(baseline) && Date.now() - lookedFrom < 10_000) {
        await sleep(500);
        after = await census();
      }
    } finally {
      await daemon.stop();
    }
    const stopped = await census();
    rmSync(logFile, { force: true });
    const t = tally(expected, audit.events);
    // A fork: a message that goes on as two copies. A redelivery repeats a run with the
    // `redelivered` flag; two copies both arrive fresh, so some run starts twice unflagged.
    const fresh = new Map<string, number>();
    for (const e of audit.events) if (e.kind === 'start' && !e.redelivered) fresh.set(`${e.id} ${e.runs}`, (fresh.get(`${e.id} ${e.runs}`) ?? 0) + 1);
    const forkedIds = new Set([...fresh].filter(([, n]) => n > 1).map(([key]) => key.split(' ')[0]!));
    const forked = forkedIds.size;
    return { t, baseline: baseline!, after: after!, stopped, closedPerRound, recoveries, began, forked, ns };
  }

  function expectNoLeaks(r: Awaited<ReturnType<typeof churn>>) {
    // Exactly the daemon's two connections, with the channels it had before the churn.
    expect(r.baseline.connections.map((c) => c.name)).toEqual([`orbit:${r.ns}:consume`, `orbit:${r.ns}:publish`]);
    expect(r.after.connections).toEqual(r.baseline.connections);
    expect(r.after.channels).toBe(r.baseline.channels);
    expect({ connections: r.stopped.connections, channels: r.stopped.channels }).toEqual({ connections: [], channels: 0 });
  }

  function notes(r: Awaited<ReturnType<typeof churn>>): string {
    return (
      `recovery = forced close → first handler run (per close: ${r.recoveries.join(', ')} ms); ` +
      `connections/channels before ${r.baseline.connections.length}/${r.baseline.channels}, after ${r.after.connections.length}/${r.after.channels}, ` +
      `after stop ${r.stopped.connections.length}/${r.stopped.channels}; messages forked into two copies: ${r.forked}`
    );
  }

  test("close_all_connections × 5 during a run: lost 0, then exactly the daemon's 2 connections and its channels, none after stop", async () => {
    const r = await churn('all');
    report(result('connection churn (close_all_connections)', `${r.closedPerRound.length} × close_all_connections during the run`, r.t, {
      recoveryMs: Math.max(...r.recoveries),
      durationMs: Date.now() - r.began,
    }, notes(r)));
    expect(r.closedPerRound.length).toBeGreaterThanOrEqual(3);
    expect(r.closedPerRound.every((n) => n === 2)).toBe(true); // each round hit both connections
    expect(r.t.strangers).toEqual([]);
    expect(r.t.lost).toBe(0);
    expectNoLeaks(r);
  }, 150_000);

  test('close_connection of the consume connection only × 5: lost 0, no leaks, and no message forks into two copies', async () => {
    const r = await churn('consume');
    report(result('connection churn (consume connection only)', `${r.closedPerRound.length} × close_connection orbit:<ns>:consume`, r.t, {
      recoveryMs: Math.max(...r.recoveries),
      durationMs: Date.now() - r.began,
    }, notes(r)));
    expect(r.closedPerRound.length).toBeGreaterThanOrEqual(3);
    expect(r.closedPerRound.every((n) => n === 1)).toBe(true);
    expect(r.t.strangers).toEqual([]);
    expect(r.t.lost).toBe(0);
    // The handlers cut off by a close run again (redelivered) — at most the prefetch per close.
    // Some go on as two copies: their replacement was confirmed, but the broker had already
    // closed the connection and discarded the ack (until the client reads the close, it cannot
    // know) — inherent to at-least-once, bounded by what was in flight.
    expect(r.t.duplicatedIds.length).toBeLessThanOrEqual(CONCURRENCY * r.closedPerRound.length);
    expect(r.forked).toBeLessThanOrEqual(CONCURRENCY * r.closedPerRound.length);
    expectNoLeaks(r);
  }, 150_000);

  test('a handler that finishes after its channel is gone publishes no replacement: only the redelivered copy goes on', async () => {
    const b = node();
    const ns = randomNamespace('ffork');
    const N = 5;
    const config = testConfig(ns, {
      amqp: { url: b.url, reconnect: '300ms', heartbeat: '5s', publishTimeout: '5s' },
      delay: { unit: '100ms', levels: LEVELS },
      shutdown: { timeout: '5s' },
      lanes: [{ name: 'work', concurrency: N }],
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const starts: Array<{ id: string; runs: number; redelivered: boolean }> = [];
    const daemon = new Daemon({
      config,
      logger: pino({ level: 'silent' }),
      handlers: {
        work: async (m) => {
          starts.push({ id: m.id, runs: m.runs, redelivered: m.redelivered });
          // First deliveries wait until their channel is long gone; redeliveries run at once.
          if (m.runs === 0 && !m.redelivered) await gate;
          return m.runs === 0 ? { reschedule: { delay: 300 } } : undefined;
        },
      },
    });
    try {
      await daemon.start();
      const ids = Array.from({ length: N }, (_, i) => `fork-${i}`);
      expect(await publishAll(config, 'work', ids)).toHaveLength(N);
      await waitFor(() => starts.length === N, 10_000, 'every handler to be held');
      const consume = parseConnections(await b.ctl('-q', 'list_connections', 'pid', 'client_properties', 'channels', '--no-table-headers'))
        .filter((c) => c.name === `orbit:${ns}:consume`);
      expect(consume).toHaveLength(1);
      await b.ctl('close_connection', consume[0]!.pid, 'fault suite: channel gone under a running handler');
      // The broker hands the messages out again on the new connection: run 0 again, flagged.
      await waitFor(() => starts.filter((s) => s.redelivered).length === N, 15_000, 'the redeliveries');
      release(); // now the first handlers return their reschedule, on a channel that is gone
      await waitFor(() => starts.filter((s) => s.runs === 1).length >= N, 10_000, 'run 1 of every message');
      await sleep(1500); // room for a second copy to show up
      for (const id of ids) {
        const mine = starts.filter((s) => s.id === id);
        expect({ id, runs: mine.map((s) => `${s.runs}${s.redelivered ? 'R' : ''}`) }).toEqual({ id, runs: ['0', '0R', '1'] });
      }
    } finally {
      release();
      await daemon.stop();
    }
  }, 60_000);
});
