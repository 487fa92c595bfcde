/**
 * Flow control under a real memory alarm. An alarm blocks every publisher on its node, so
 * this runs on a private RabbitMQ node, never the shared one.
 *
 * While the broker blocks publishing: `orbit_amqp_blocked{connection="publish"}` is 1, a
 * reschedule's confirm (and so its ack) waits, the lane cancels its consumer so nothing new
 * is taken up, and a Scheduler.publish started meanwhile stays pending — longer than
 * `amqp.publishTimeout`, without timing out: a block is a pause, not a lost confirm. When the alarm
 * clears, everything resumes and every message is processed exactly as planned — also when
 * the broker restarts during the alarm (the new connection is never "unblocked").
 */
import { Daemon, Scheduler } from '../../src';
import { silentLogger } from '../../src/logging/logger';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomNamespace, testConfig } from '../helpers/broker';
import { freePort, type PrivateBroker } from '../helpers/private-broker';
import { usePrivateBroker } from '../helpers/private-broker-suite';
import { sleep, waitFor } from '../helpers/wait';

const privateBroker = usePrivateBroker();

/** The default watermark this node runs with (and the one restored). */
const DEFAULT_WATERMARK = '0.4';
const PUBLISH_TIMEOUT = '2s';
const PUBLISH_TIMEOUT_MS = 2000;
const UI_TOKEN = 'flow-console-token-0123456789';

interface QueueRow {
  ready: number;
  unacked: number;
  consumers: number;
}

async function laneQueue(b: PrivateBroker, queue: string): Promise<QueueRow | undefined> {
  const out = await b.ctl('-q', 'list_queues', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers', '--no-table-headers');
  for (const line of out.split('\n')) {
    const [name, ready, unacked, consumers] = line.trim().split(/\s+/);
    if (name === queue) return { ready: Number(ready), unacked: Number(unacked), consumers: Number(consumers) };
  }
  return undefined;
}

async function memoryAlarm(b: PrivateBroker): Promise<boolean> {
  return (await b.ctl('eval', 'rabbit_alarm:get_alarms().')).includes('memory');
}

test('a memory alarm pauses publishing and consuming; clearing it resumes and nothing is lost', async () => {
  const b = privateBroker();
  const ns = randomNamespace('flow');
  const dir = mkdtempSync(join(tmpdir(), 'orbit-flow-'));
  const tokenFile = join(dir, 'ui-token');
  writeFileSync(tokenFile, UI_TOKEN);
  const httpPort = await freePort();
  const LANE = 'f';
  const queue = `${ns}.lane.${LANE}`;
  const config = testConfig(ns, {
    // Shorter than the alarm: time spent blocked must not count towards a confirm's deadline
    // (else the Scheduler's publish fails though the broker takes it, and a reschedule is
    // published twice).
    amqp: { url: b.url, reconnect: '500ms', publishTimeout: PUBLISH_TIMEOUT },
    delay: { unit: '1s', levels: 3 },
    lanes: [{ name: LANE, concurrency: 2 }],
    // The console's overview reports the alarm (README, "Console").
    http: { host: '127.0.0.1', port: httpPort, ui: { enabled: true, tokenFile } },
  });
  const overviewAlarm = async (): Promise<unknown> => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/ui/api/overview`, { headers: { authorization: `Bearer ${UI_TOKEN}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { alarm: unknown }).alarm;
  };

  /** Handler starts, in order: id and the `runs` it saw. */
  const starts: Array<{ id: string; runs: number }> = [];
  let holding = true;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let settled = 0;
  let settleFailed = 0;
  const daemon = new Daemon({
    config,
    logger: silentLogger(),
    observer: { messageSettled: () => settled++, settleFailed: () => settleFailed++ },
    handlers: {
      [LANE]: async (m) => {
        starts.push({ id: m.id, runs: m.runs });
        if (holding) await gate;
        // First run: reschedule (a publish, so it needs the broker's confirm); second: done.
        return m.runs === 0 ? { reschedule: { delay: 0 } } : undefined;
      },
    },
  });
  const blocked = async (connection: 'publish' | 'consume') =>
    (await daemon.metrics.blocked.get()).values.find((v) => v.labels.connection === connection)?.value;
  const inFlight = async () => (await daemon.metrics.inFlight.get()).values.find((v) => v.labels.lane === LANE)?.value;

  const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
  const ids = Array.from({ length: 10 }, (_, i) => `flow-${i}`);
  let alarmOn = false;
  try {
    await daemon.start();
    await Promise.all(ids.map((id) => scheduler.publish(LANE, { id }, { id })));
    // Two handlers (concurrency 2) are running and held; eight messages wait in the queue.
    await waitFor(() => starts.length === 2, 10_000, 'two handlers started');
    expect(await blocked('publish')).toBe(0);
    expect(await overviewAlarm()).toBeNull();

    // The alarm: any watermark below current use raises it at once.
    alarmOn = true;
    await b.ctl('set_vm_memory_high_watermark', '0.0000001');
    expect(await memoryAlarm(b)).toBe(true);

    // A publish started during the alarm.
    let lateResolved = false;
    const late = scheduler.publish(LANE, { id: 'flow-late' }, { id: 'flow-late' }).then((r) => {
      lateResolved = true;
      return r;
    });
    late.catch(() => undefined);

    // The held handlers return `reschedule`: their publishes meet the block.
    holding = false;
    release();
    await waitFor(async () => (await blocked('publish')) === 1, 10_000, 'publish connection blocked');
    const blockedAt = Date.now();
    // The lane cancels its consumer (flow control), seen by the broker itself.
    await waitFor(async () => (await laneQueue(b, queue))?.consumers === 0, 15_000, 'lane consumer cancelled');

    // Hold the alarm a while, past the publish timeout: nothing moves, nothing fails.
    await sleep(Math.max(1500, blockedAt + PUBLISH_TIMEOUT_MS + 1500 - Date.now()));
    expect(await blocked('publish')).toBe(1);
    expect(await blocked('consume')).toBe(0); // only publishing connections are blocked
    expect(await overviewAlarm()).toEqual(expect.stringContaining('publish'));
    expect(starts).toHaveLength(2); // no new handler runs
    expect(settled).toBe(0); // reschedules not confirmed, so not settled (and not acked)
    expect(await inFlight()).toBe(2);
    expect(lateResolved).toBe(false);
    expect(settleFailed).toBe(0); // no CONFIRM_TIMEOUT while blocked
    expect(daemon.inFlight).toBe(2);
    // Paused on purpose: still ready (connected, a lane channel open).
    expect(daemon.readiness()).toEqual({ ready: true });
    expect(await laneQueue(b, queue)).toEqual({ ready: 8, unacked: 2, consumers: 0 });

    // Clear the alarm.
    await b.ctl('set_vm_memory_high_watermark', DEFAULT_WATERMARK);
    alarmOn = false;
    expect(await memoryAlarm(b)).toBe(false);

    await waitFor(async () => (await blocked('publish')) === 0, 10_000, 'publish connection unblocked');
    await waitFor(async () => (await overviewAlarm()) === null, 10_000, 'the console to show no alarm');
    const published = await late;
    expect(published.id).toBe('flow-late');
    // 11 messages, each rescheduled once then done: 22 settlements.
    await waitFor(() => settled === 22, 30_000, 'all 22 settlements');
    await waitFor(
      async () => {
        const row = await laneQueue(b, queue);
        return row?.consumers === 1 && row.ready === 0 && row.unacked === 0;
      },
      10_000,
      'lane consuming again with an empty queue',
    );

    // Every message ran exactly twice (runs 0 then 1): nothing lost, nothing doubled.
    const byId = new Map<string, number[]>();
    for (const s of starts) byId.set(s.id, [...(byId.get(s.id) ?? []), s.runs]);
    expect([...byId.keys()].sort()).toEqual([...ids, 'flow-late'].sort());
    for (const [id, runs] of byId) expect({ id, runs }).toEqual({ id, runs: [0, 1] });
    expect(await inFlight()).toBe(0);
    expect(settleFailed).toBe(0);
    expect(daemon.readiness()).toEqual({ ready: true });
  } finally {
    // Never leave the node alarmed: the scheduler and daemon could not even close.
    if (alarmOn) await b.ctl('set_vm_memory_high_watermark', DEFAULT_WATERMARK).catch(() => undefined);
    release();
    await scheduler.close();
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a broker restart during an alarm: the lanes resume on the new, unblocked connection', async () => {
  const b = privateBroker();
  const ns = randomNamespace('flowr');
  const LANE = 'f';
  const queue = `${ns}.lane.${LANE}`;
  const config = testConfig(ns, {
    amqp: { url: b.url, reconnect: '500ms', publishTimeout: '60s' },
    delay: { unit: '1s', levels: 3 },
    lanes: [{ name: LANE, concurrency: 2 }],
  });
  const starts: Array<{ id: string; runs: number }> = [];
  let holding = true;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const daemon = new Daemon({
    config,
    logger: silentLogger(),
    handlers: {
      [LANE]: async (m) => {
        starts.push({ id: m.id, runs: m.runs });
        if (holding) await gate;
        return m.runs === 0 ? { reschedule: { delay: 0 } } : undefined;
      },
    },
  });
  const blocked = async () => (await daemon.metrics.blocked.get()).values.find((v) => v.labels.connection === 'publish')?.value;
  const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
  let alarmOn = false;
  try {
    await daemon.start();
    await scheduler.publish(LANE, { id: 'before' }, { id: 'before' });
    await scheduler.close();
    await waitFor(() => starts.length === 1, 10_000, 'first handler started');

    alarmOn = true;
    await b.ctl('set_vm_memory_high_watermark', '0.0000001');
    holding = false;
    release();
    await waitFor(async () => (await blocked()) === 1, 10_000, 'publish connection blocked');
    await waitFor(async () => (await laneQueue(b, queue))?.consumers === 0, 15_000, 'lane paused');

    // The restart drops every connection and clears the runtime watermark (back to the
    // configured 0.4): the new publish connection is never blocked, so no `unblocked` comes.
    await b.stopApp();
    await b.startApp();
    alarmOn = false;
    expect(await memoryAlarm(b)).toBe(false);
    await waitFor(() => daemon.readiness().ready, 15_000, 'daemon ready again');
    expect(await blocked()).toBe(0);

    const after = new Scheduler({ config, role: 'cli', logger: silentLogger() });
    try {
      await after.publish(LANE, { id: 'after' }, { id: 'after' });
    } finally {
      await after.close();
    }
    // Both reach their second run (`before` may run twice more: its ack was lost with the
    // connection, so the broker redelivers it — at-least-once).
    const secondRuns = () => new Set(starts.filter((s) => s.runs === 1).map((s) => s.id));
    await waitFor(() => secondRuns().has('before') && secondRuns().has('after'), 20_000, 'both messages fully processed');
    await waitFor(
      async () => {
        const row = await laneQueue(b, queue);
        return row?.consumers === 1 && row.ready === 0 && row.unacked === 0;
      },
      10_000,
      'lane consuming with an empty queue',
    );
  } finally {
    if (alarmOn) await b.ctl('set_vm_memory_high_watermark', DEFAULT_WATERMARK).catch(() => undefined);
    release();
    await scheduler.close();
    await daemon.stop();
  }
});
