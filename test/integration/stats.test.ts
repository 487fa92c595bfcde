/**
 * `orbit stats` against the real broker, on a known seeded state: 5 messages due now in lane
 * a (no daemon runs, so they stay ready), 7 delayed 3 s, 11 delayed 100 s, 13 delayed 2 h,
 * and 2 put straight into `<ns>.dead`. A delayed message sits in the level of its delay's
 * highest set bit right after publishing (routeDelay publishes to that level's exchange).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import type { BrokerSession } from '../../src/publish/session';
import { routeDelay } from '../../src/delay/routing';
import { silentLogger } from '../../src/logging/logger';
import { Scheduler } from '../../src/publish/scheduler';
import { collectStats, type StatsSnapshot } from '../../src/stats/collect';
import { forecast } from '../../src/stats/forecast';
import { names } from '../../src/naming/names';
import { AMQP_URL, deleteNamespace, queueDepth, randomNamespace, testConfig } from '../helpers/broker';
import { ensureBuilt, runCli, startCli } from '../helpers/cli';
import { waitFor } from '../helpers/wait';

jest.setTimeout(60_000);

const UNIT_MS = 1000;
const LEVELS = 14;
const DELAYS = { soon: 3000, later: 100_000, hours: 7_200_000 } as const;
const COUNTS = { now: 5, soon: 7, later: 11, hours: 13, dead: 2 } as const;
/**
 * The forecast of that state (src/stats/forecast.ts). Minute: 5 ready + 7 in level 1 (window
 * 3 s) + 11 × (60·61/2)/64² in level 6 (4.92) + 13 × 1830/4096² in level 12 (0.001) = 16.9.
 * Hour: 5 + 7 + 11 + 13 × (3600·3601/2)/4096² (5.02) = 28.0. Day: all 36 (level 12's window
 * is 8191 s). Just published, so the truth is 12 and 23: the model reads a fresh fill high.
 */
const FORECAST = { minute: 17, hour: 28, day: 36 } as const;

let dir: string;
let ns: string;
let configFile: string;
let scheduler: Scheduler;
const servers: Server[] = [];

const config = () => testConfig(ns, { delay: { unit: '1s', levels: LEVELS, tolerance: 0 }, lanes: [{ name: 'a' }, { name: 'b' }] });

/** The level a delay enters: the one whose exchange routeDelay publishes to. */
function entryLevel(delayMs: number): number {
  const route = routeDelay(delayMs, 'a', { unitMs: UNIT_MS, levels: LEVELS, tolerance: 0 }, names(ns));
  const m = /\.delay\.(\d+)$/.exec(route.exchange);
  if (!m) throw new Error(`delay ${delayMs} goes to ${route.exchange}, not a level`);
  return Number(m[1]);
}

function levelDepths(s: Pick<StatsSnapshot, 'levels'>): Record<number, number> {
  return Object.fromEntries(s.levels.filter((l) => l.messages > 0).map((l) => [l.level, l.messages]));
}

/** A local /metrics endpoint serving `body`; resolves with its URL. */
async function metricsServer(body: string): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
}

/** A URL on which nothing listens (a port just released). */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/metrics`;
}

async function statsJson(...extra: string[]): Promise<StatsSnapshot> {
  const res = await runCli(['stats', '--json', '-c', configFile, ...extra]);
  if (res.code !== 0) throw new Error(`orbit stats exited ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
  return JSON.parse(res.stdout) as StatsSnapshot;
}

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'orbit-stats-'));
  ns = randomNamespace('stats');
  configFile = join(dir, 'orbit.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      namespace: ns,
      amqp: { url: AMQP_URL },
      delay: { unit: '1s', levels: LEVELS, tolerance: 0 },
      log: { level: 'warn' },
      http: { port: 0 },
      // Unbundled, as `config()` (testConfig) pins them: the counts below are of messages.
      lanes: [{ name: 'a', bundle: { max: 1 } }, { name: 'b', bundle: { max: 1 } }],
    }),
  );
  scheduler = new Scheduler({ config: config(), role: 'cli', logger: silentLogger() });
}, 180_000);

afterAll(async () => {
  await scheduler?.close();
  for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  await deleteNamespace(ns);
  rmSync(dir, { recursive: true, force: true });
});

// The tests run in order on one seeded state: right after publishing (before the 3 s messages
// leave level 1, 2 s later), then once those reached lane a (stable until the 100 s ones leave
// level 6, 64 s after publishing).
describe('orbit stats on a seeded state', () => {
  let session: BrokerSession;
  let publishedAt: number;

  test('the collection right after publishing reports where each message sits, and the pure forecast of it', async () => {
    expect([entryLevel(DELAYS.soon), entryLevel(DELAYS.later), entryLevel(DELAYS.hours)]).toEqual([1, 6, 12]);
    session = await scheduler.connect(); // topology asserted before the clock starts

    const conn = await amqplib.connect(AMQP_URL);
    try {
      const ch = await conn.createConfirmChannel();
      for (let i = 0; i < COUNTS.dead; i++) ch.sendToQueue(`${ns}.dead`, Buffer.from(`{"dead":${i}}`), { persistent: true });
      await ch.waitForConfirms();
      await ch.close();
    } finally {
      await conn.close();
    }

    publishedAt = Date.now();
    const publishes: Promise<unknown>[] = [];
    const seed = (n: number, delay: number) => {
      for (let i = 0; i < n; i++) publishes.push(scheduler.publish('a', { i, delay }, { delay }));
    };
    seed(COUNTS.now, 0);
    seed(COUNTS.soon, DELAYS.soon);
    seed(COUNTS.later, DELAYS.later);
    seed(COUNTS.hours, DELAYS.hours);
    await Promise.all(publishes); // each confirmed: enqueued in its first queue

    // Settled: every seeded message is counted somewhere.
    let s!: StatsSnapshot;
    await waitFor(
      async () => {
        s = await collectStats(session, config());
        const total = s.lanes.reduce((n, l) => n + l.ready, 0) + s.levels.reduce((n, l) => n + l.messages, 0);
        return total === 36;
      },
      1500,
      'all 36 seeded messages to be counted',
    );
    // Level 1's TTL is 2 s: a snapshot taken later than that could no longer be exact.
    expect(Date.now() - publishedAt).toBeLessThan(2000);

    expect(s.namespace).toBe(ns);
    expect(s.unitMs).toBe(UNIT_MS);
    expect(s.lanes.map((l) => [l.lane, l.ready, l.consumers, l.inFlight])).toEqual([
      ['a', 5, 0, null],
      ['b', 0, 0, null],
    ]);
    expect(s.levels.map((l) => l.level)).toEqual([...Array(LEVELS).keys()]);
    expect(levelDepths(s)).toEqual({ 1: 7, 6: 11, 12: 13 });
    expect(s.levels[1]!.dueWithinMs).toBe(3000);
    expect(s.dead).toBe(2);
    expect(s.unroutable).toBe(0);
    expect(s.forecast).toEqual(forecast({ readyNow: 5, unitMs: UNIT_MS, levels: s.levels }));
    expect(s.forecast).toEqual(FORECAST);
    expect(s.forecast.minute).toBeGreaterThanOrEqual(5 + 7);
    expect(s.forecast.day).toBeGreaterThanOrEqual(36);
    expect(s.notes.join('\n')).toMatch(/--metrics-url/);
  });

  test('orbit stats --json, once the 3 s messages reached lane a, reports the exact depths and forecast', async () => {
    await waitFor(async () => (await queueDepth(`${ns}.lane.a`)) === COUNTS.now + COUNTS.soon, 15_000, 'the 3 s messages in lane a');
    const s = await statsJson();
    expect(Date.now() - publishedAt).toBeLessThan(64_000); // level 6 (TTL 64 s) still holds the 100 s ones

    expect(Number.isNaN(Date.parse(s.sampledAt))).toBe(false);
    // The file config leaves work-ahead at its default: on, 10 min ahead after 5 s idle.
    const workAhead = { enabled: true, idleMs: 5000, maxAdvanceMs: 600_000, maxRate: 100, taken: null, activeDaemons: null };
    expect(s.lanes).toEqual([
      { lane: 'a', ready: 12, consumers: 0, inFlight: null, queues: [`${ns}.lane.a`], bundleMax: 1, workAhead },
      { lane: 'b', ready: 0, consumers: 0, inFlight: null, queues: [`${ns}.lane.b`], bundleMax: 1, workAhead },
    ]);
    expect(s.levels).toHaveLength(LEVELS);
    expect(levelDepths(s)).toEqual({ 6: 11, 12: 13 });
    expect(s.levels.find((l) => l.level === 12)).toEqual({ level: 12, queue: `${ns}.delay.12`, messages: 13, ttlMs: 4_096_000, dueWithinMs: 8_191_000 });
    expect(s.dead).toBe(2);
    expect(s.unroutable).toBe(0);
    expect(s.forecast).toEqual(forecast({ readyNow: 12, unitMs: UNIT_MS, levels: s.levels }));
    expect(s.forecast).toEqual(FORECAST);
    expect(s.forecast.minute).toBeGreaterThanOrEqual(12);
    expect(s.forecast.day).toBeGreaterThanOrEqual(36);
  });

  test('the human screen: lane, level, totals and forecast sections', async () => {
    const res = await runCli(['stats', '-c', configFile]);
    expect(res.code).toBe(0);
    const out = res.stdout;
    expect(out).toMatch(/^LANE\s+READY\s+IN-FLIGHT\s+CONSUMERS\s+WORK-AHEAD\s+RUN EARLY$/m);
    expect(out).toMatch(/^a\s+12\s+-\s+0\s+≤ 10m early\s+-$/m);
    expect(out).toMatch(/^b\s+0\s+-\s+0\s+≤ 10m early\s+-$/m);
    expect(out).toContain('work-ahead: a lane idle for 5s (free capacity, no delivery) runs delayed messages early');
    expect(out).toMatch(/^\s*6\s+11\s+≤ 2m7s\s+1m4s$/m);
    expect(out).toMatch(/^\s*12\s+13\s+≤ 2h17m\s+1h8m$/m);
    expect(out).toContain(`(${LEVELS - 2} empty levels not shown; --all shows every level)`);
    expect(out).toMatch(/^dead\s+2$/m);
    expect(out).toMatch(/^unroutable\s+0$/m);
    expect(out).toMatch(/^1 minute\s+~17$/m);
    expect(out).toMatch(/^1 hour\s+~28$/m);
    expect(out).toMatch(/^1 day\s+~36$/m);
    expect(out).toMatch(/estimate/);
    expect(out).toMatch(/note: in-flight needs --metrics-url/);

    const all = await runCli(['stats', '-c', configFile, '--all']);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^\s*13\s+0\s+≤ 4h33m\s+2h17m$/m);
  });

  test('--metrics-url: in-flight from a daemon /metrics, summed over URLs; unreachable ones noted', async () => {
    const one = await metricsServer(
      '# TYPE orbit_in_flight gauge\norbit_in_flight{lane="a"} 3\norbit_in_flight{lane="b"} 0\n' +
        'orbit_work_ahead_total{lane="a"} 40\norbit_work_ahead_active{lane="a"} 1\norbit_work_ahead_total{lane="b"} 0\n',
    );
    const s = await statsJson('--metrics-url', one);
    expect(s.lanes.map((l) => [l.lane, l.inFlight])).toEqual([
      ['a', 3],
      ['b', 0],
    ]);
    expect(s.lanes.map((l) => [l.lane, l.workAhead.taken, l.workAhead.activeDaemons])).toEqual([
      ['a', 40, 1],
      ['b', 0, 0],
    ]);
    expect(s.notes).toEqual([]);

    const two = await metricsServer('orbit_in_flight{lane="a"} 1\norbit_in_flight{lane="b"} 2\n');
    const down = await deadUrl();
    const summed = await statsJson('--metrics-url', one, '--metrics-url', two, '--metrics-url', down);
    expect(summed.lanes.map((l) => [l.lane, l.inFlight])).toEqual([
      ['a', 4],
      ['b', 2],
    ]);
    expect(summed.notes.join('\n')).toContain(`${down} unreachable`);
    expect(summed.notes.join('\n')).toContain('only the 2 of 3 daemon(s)');

    const none = await runCli(['stats', '-c', configFile, '--metrics-url', down]);
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/^a\s+12\s+-\s+0\s+≤ 10m early\s+-$/m);
    expect(none.stdout).toContain(`note: in-flight: ${down} unreachable`);
  });

  test('--watch redraws (a separator between screens when stdout is no TTY) and exits 0 on SIGINT', async () => {
    const proc = await startCli(['stats', '-c', configFile, '--watch', '0.3']);
    try {
      await waitFor(() => proc.lines.filter((l) => /^-{20,}$/.test(String(l.raw))).length >= 2, 15_000, 'three screens');
      expect(proc.lines.filter((l) => /^LANE\s+READY\s+IN-FLIGHT\s+CONSUMERS\s+WORK-AHEAD\s+RUN EARLY$/.test(String(l.raw))).length).toBeGreaterThanOrEqual(3);
      expect(proc.lines.some((l) => String(l.raw).includes('\x1b[2J'))).toBe(false);
      proc.kill('SIGINT');
      const exit = await proc.waitForExit(10_000);
      expect(exit.code).toBe(0);
      expect(exit.stderr).toBe('');
    } finally {
      await proc.destroy();
    }
  });
});

describe('orbit stats refuses bad flags with exit 2', () => {
  test.each([
    [['--watch', 'soon']],
    [['--watch', '0']],
    [['--metrics-url', 'ftp://127.0.0.1/metrics']],
  ])('%j', async (flags) => {
    const res = await runCli(['stats', '--namespace', randomNamespace('stats-bad'), '--amqp-url', AMQP_URL, ...flags]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^orbit: --(watch|metrics-url)/);
  });
});
