/**
 * A lane removed from the config no longer strands its messages silently (issue 15, item 5).
 * A daemon with lanes a and b records both; b gets messages while no daemon runs it; a daemon
 * with only lane a then warns of b, counts it in `orbit_stranded_messages`, `orbit stats`
 * lists it, and `orbit lanes move` moves every message into a, where they run with their ids
 * and headers. Once the user deletes b's queue, the next start forgets it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import pino from 'pino';
import { readLaneRecord } from '../../src/amqp/lane-record-queue';
import type { ResolvedConfig } from '../../src/config/types';
import { Daemon } from '../../src/daemon';
import { Scheduler } from '../../src/publish/scheduler';
import type { StatsSnapshot } from '../../src/stats/collect';
import { names } from '../../src/naming/names';
import type { Handler, Message } from '../../src/worker/handler-types';
import { AMQP_URL, deleteNamespace, queueDepth, randomNamespace, testConfig, writeConfigFile } from '../helpers/broker';
import { ensureBuilt, runCli } from '../helpers/cli';
import { capturingLogger } from '../helpers/capturing-logger';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const NOW = 20;
const DELAYED = 3;
const TOTAL = NOW + DELAYED;

let ns: string;
let dir: string;
let configFile: string;
const daemons: Daemon[] = [];
const extraNamespaces: string[] = [];

const withBoth = (): ResolvedConfig => testConfig(ns, { lanes: [{ name: 'a' }, { name: 'b' }] });
const onlyA = (): ResolvedConfig => testConfig(ns, { lanes: [{ name: 'a' }] });


async function startDaemon(config: ResolvedConfig, handlers: Record<string, Handler>, logger: pino.Logger): Promise<Daemon> {
  const daemon = new Daemon({ config, handlers, logger, queueSampleIntervalMs: 200 });
  daemons.push(daemon);
  await daemon.start();
  return daemon;
}

async function stopAll(): Promise<void> {
  while (daemons.length > 0) await daemons.pop()!.stop();
}

async function record(): Promise<string[] | null> {
  const conn = await amqplib.connect(AMQP_URL);
  try {
    return (await readLaneRecord(conn, ns))?.map((e) => e.queue).sort() ?? null;
  } finally {
    await conn.close();
  }
}

beforeAll(async () => {
  await ensureBuilt();
  ns = randomNamespace('strand');
  dir = mkdtempSync(join(tmpdir(), 'orbit-strand-'));
  configFile = writeConfigFile(dir, ns, { lanes: [{ name: 'a' }], log: { level: 'warn' } });
});

afterAll(async () => {
  await stopAll();
  await deleteNamespace(ns);
  for (const other of extraNamespaces) await deleteNamespace(other);
  rmSync(dir, { recursive: true, force: true });
});

describe('a lane removed from the config', () => {
  const ran: Message[] = [];
  const published: string[] = [];
  let daemonA: Daemon;
  let logA: ReturnType<typeof capturingLogger>;

  test('a daemon with lanes a and b records both lane queues', async () => {
    await startDaemon(withBoth(), { a: async () => ({ done: true }), b: async () => ({ done: true }) }, capturingLogger().logger);
    await stopAll();
    const n = names(ns);
    expect(await record()).toEqual([n.lane('a'), n.lane('b')]);
  });

  test('messages for b pile up in its queue while no daemon runs b, delayed ones too (its binding stays)', async () => {
    const scheduler = new Scheduler({ config: withBoth() });
    try {
      for (let i = 0; i < NOW; i++) {
        const m = await scheduler.publish('b', { i }, { key: `k${i}`, headers: { trace: `t${i}` } });
        published.push(m.id);
      }
      for (let i = 0; i < DELAYED; i++) published.push((await scheduler.publish('b', { late: i }, { delay: '2s' })).id);
    } finally {
      await scheduler.close();
    }
    await waitFor(async () => (await queueDepth(names(ns).lane('b'))) === TOTAL, 15_000, `${TOTAL} messages in lane b's queue`);
  });

  test('a daemon with only lane a warns of b with its depth and the way out, and counts it in orbit_stranded_messages', async () => {
    logA = capturingLogger();
    daemonA = await startDaemon(onlyA(), { a: async (m) => (ran.push(m), { done: true }) }, logA.logger);
    const warning = logA.lines.find((l) => l.level === 'warn' && l.lane === 'b');
    expect(warning).toMatchObject({ lane: 'b', queue: names(ns).lane('b'), messages: TOTAL });
    expect(String(warning!.msg)).toContain('orbit lanes move --from b --to a');
    const metric = `orbit_stranded_messages{lane="b",queue="${names(ns).lane('b')}"} ${TOTAL}`;
    expect(await daemonA.metrics.registry.metrics()).toContain(metric);
    // The lane queue's gauge of its own, not counted among the configured lanes' queues.
    await new Promise((r) => setTimeout(r, 500)); // a few sampling rounds
    const text = await daemonA.metrics.registry.metrics();
    expect(text).toContain(metric);
    expect(text).not.toContain(`orbit_queue_messages{queue="${names(ns).lane('b')}"`);
  });

  test('orbit stats lists it under STRANDED LANES (text and --json)', async () => {
    const text = await runCli(['stats', '-c', configFile]);
    expect([text.code, text.stderr]).toEqual([0, expect.any(String)]);
    expect(text.stdout).toContain('STRANDED LANES');
    expect(text.stdout).toMatch(new RegExp(`^b\\s+${names(ns).lane('b').replace(/[.-]/g, '\\$&')}\\s+${TOTAL}$`, 'm'));
    const json = await runCli(['stats', '--json', '-c', configFile]);
    expect([json.code, json.stderr]).toEqual([0, expect.any(String)]);
    expect((JSON.parse(json.stdout) as StatsSnapshot).stranded).toEqual([{ lane: 'b', queue: names(ns).lane('b'), messages: TOTAL, consumers: 0 }]);
  });

  test('orbit stats declares nothing: a namespace without a record shows no section and still has none', async () => {
    const other = randomNamespace('strand-ro');
    extraNamespaces.push(other);
    const file = writeConfigFile(mkdtempSync(join(dir, 'ro-')), other, { lanes: [{ name: 'a' }], log: { level: 'warn' } });
    // The namespace's topology, declared by a publisher (which keeps no lane record).
    const publisher = new Scheduler({ config: testConfig(other, { lanes: [{ name: 'a' }] }) });
    await publisher.connect();
    await publisher.close();
    const res = await runCli(['stats', '--json', '-c', file]);
    expect([res.code, res.stderr]).toEqual([0, expect.any(String)]);
    expect((JSON.parse(res.stdout) as StatsSnapshot).stranded).toEqual([]);
    const conn = await amqplib.connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await expect(ch.checkQueue(names(other).laneRecord)).rejects.toMatchObject({ code: 404 });
    } finally {
      await conn.close().catch(() => undefined);
    }
  });

  test('orbit lanes move --limit moves that many; without it, every other one; lane a runs them with ids and headers kept', async () => {
    const first = await runCli(['lanes', 'move', '--from', 'b', '--to', 'a', '--limit', '5', '-c', configFile]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`moved 5 message(s) from ${names(ns).lane('b')} to lane a; ${TOTAL - 5} left`);
    const rest = await runCli(['lanes', 'move', '--from', 'b', '--to', 'a', '-c', configFile]);
    expect(rest.code).toBe(0);
    expect(rest.stdout).toContain(`moved ${TOTAL - 5} message(s) from ${names(ns).lane('b')} to lane a; 0 left`);
    await waitFor(() => ran.length >= TOTAL, 20_000, `${TOTAL} runs in lane a`);
    expect(ran.map((m) => m.id).sort()).toEqual([...published].sort());
    expect(ran.every((m) => m.lane === 'a' && m.attempt === 0)).toBe(true);
    const k3 = ran.find((m) => JSON.parse(m.body.toString()).i === 3)!;
    expect(k3.headers).toMatchObject({ trace: 't3' });
    expect(await queueDepth(names(ns).lane('b'))).toBe(0);
    await waitFor(
      async () => (await daemonA.metrics.registry.metrics()).includes(`orbit_stranded_messages{lane="b",queue="${names(ns).lane('b')}"} 0`),
      5000,
      'the stranded gauge at 0',
    );
  });

  test('moving into a lane the config lacks, or from a configured lane, is refused (exit 2)', async () => {
    const unknown = await runCli(['lanes', 'move', '--from', 'b', '--to', 'zzz', '-c', configFile]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('[UNKNOWN_LANE]');
    const configured = await runCli(['lanes', 'move', '--from', 'a', '--to', 'a', '-c', configFile]);
    expect(configured.code).toBe(2);
    expect(configured.stderr).toContain('[LANE_NOT_STRANDED]');
  });

  test('orbit topology records the lane queues it declares', async () => {
    const other = randomNamespace('strand-topo');
    extraNamespaces.push(other);
    const file = writeConfigFile(mkdtempSync(join(dir, 'topo-')), other, { lanes: [{ name: 'a' }, { name: 'p', partitions: 2 }], log: { level: 'warn' } });
    const res = await runCli(['topology', '-c', file]);
    expect([res.code, res.stderr]).toEqual([0, expect.any(String)]);
    const conn = await amqplib.connect(AMQP_URL);
    try {
      const n = names(other);
      expect((await readLaneRecord(conn, other))?.map((e) => e.queue).sort()).toEqual([n.lane('a'), n.lanePartition('p', 0), n.lanePartition('p', 1)]);
    } finally {
      await conn.close();
    }
  });

  test('a lane another daemon consumes is not stranded: stats says so in a note, and the move refuses it', async () => {
    await startDaemon(withBoth(), { a: async () => ({ done: true }), b: async () => ({ done: true }) }, capturingLogger().logger);
    const stats = await runCli(['stats', '--json', '-c', configFile]);
    expect([stats.code, stats.stderr]).toEqual([0, expect.any(String)]);
    const snapshot = JSON.parse(stats.stdout) as StatsSnapshot;
    expect(snapshot.stranded).toEqual([]);
    expect(snapshot.notes).toContain(`lane b is not in this config, but ${names(ns).lane('b')} has 1 consumer(s) (a daemon with another config): not stranded`);
    const move = await runCli(['lanes', 'move', '--from', 'b', '--to', 'a', '-c', configFile]);
    expect(move.code).toBe(1);
    expect(move.stderr).toContain('[QUEUE_IN_USE]');
  });

  test('once the user deletes b\'s queue, the next start forgets it and warns no more', async () => {
    await stopAll();
    const conn = await amqplib.connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      await ch.deleteQueue(names(ns).lane('b'));
    } finally {
      await conn.close();
    }
    const second = capturingLogger();
    await startDaemon(onlyA(), { a: async () => ({ done: true }) }, second.logger);
    expect(second.lines.find((l) => l.msg === 'queues of removed lanes were deleted; forgotten')).toMatchObject({ queues: [names(ns).lane('b')] });
    expect(second.lines.filter((l) => l.level === 'warn' && l.lane === 'b')).toEqual([]);
    expect(await record()).toEqual([names(ns).lane('a')]);
    await stopAll();
    const third = capturingLogger();
    await startDaemon(onlyA(), { a: async () => ({ done: true }) }, third.logger);
    expect(third.lines.filter((l) => l.lane === 'b' || l.msg === 'queues of removed lanes were deleted; forgotten')).toEqual([]);
  });
});
