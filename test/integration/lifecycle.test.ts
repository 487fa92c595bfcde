/**
 * The real CLI `orbit start` as a child process: graceful SIGTERM with handlers in flight,
 * and handler modules in every module flavour loaded from a config file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, Scheduler } from '../../src';
import { silentLogger } from '../../src/logging/logger';
import { readAuditFields } from '../helpers/audit';
import { deleteNamespace, randomNamespace, withChannel, writeConfigFile } from '../helpers/broker';
import { type CliProcess, ensureBuilt, startCli } from '../helpers/cli';
import { waitFor } from '../helpers/wait';

jest.setTimeout(90_000);

beforeAll(() => ensureBuilt(), 180_000);

interface AuditLine {
  readonly kind: string;
  readonly id: string;
  readonly runs: number;
  readonly extra: string;
}

function readAudit(file: string): AuditLine[] {
  return readAuditFields(file).map(([kind = '', id = '', runs = '', ...rest]) => ({ kind, id, runs: Number(runs), extra: rest.join(' ') }));
}

/** Depth of each queue; one connection for all, so the snapshot is quick. */
async function depths(queues: readonly string[]): Promise<Record<string, number>> {
  return withChannel(async (ch) => {
    const out: Record<string, number> = {};
    for (const q of queues) out[q] = (await ch.checkQueue(q)).messageCount;
    return out;
  });
}

describe('orbit start (child process)', () => {
  let dir: string;
  let ns: string;
  const processes: CliProcess[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'orbit-lifecycle-'));
    ns = randomNamespace('lc');
  });

  afterEach(async () => {
    for (const p of processes.splice(0)) await p.destroy();
    await deleteNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
  });

  test('SIGTERM with handlers in flight: they finish, outcomes settle, exit 0; a second daemon finishes the rest exactly once', async () => {
    const HANDLER_MS = 2000;
    const RESCHEDULE_DELAY_MS = 4000; // level 2 only (TTL 4 s): long enough to count it there after exit
    const SHUTDOWN_TIMEOUT_MS = 8000;
    const CONCURRENCY = 20;
    const MESSAGES = 30;
    const audit = join(dir, 'audit.log');
    writeFileSync(
      join(dir, 'handler.js'),
      `const { appendFileSync } = require('node:fs');
const AUDIT = ${JSON.stringify(audit)};
exports.handle = async function handle(message) {
  const { total } = message.json();
  appendFileSync(AUDIT, 'start ' + message.id + ' ' + message.runs + '\\n');
  await new Promise((resolve) => setTimeout(resolve, ${HANDLER_MS}));
  appendFileSync(AUDIT, 'end ' + message.id + ' ' + message.runs + '\\n');
  return message.runs + 1 < total ? { reschedule: { delay: ${RESCHEDULE_DELAY_MS} } } : undefined;
};
`,
    );
    const configFile = writeConfigFile(dir, ns, {
      // Binary levels: the test counts the reschedules resting in delay level 2.
      delay: { unit: '1s', levels: 4, tolerance: 0 },
      shutdown: { timeout: `${SHUTDOWN_TIMEOUT_MS}ms` },
      lanes: [{ name: 'work', concurrency: CONCURRENCY, handler: './handler.js', timeout: '10s' }],
    });
    const config = loadConfig({ configFile, env: {} });
    const lane = `${ns}.lane.work`;
    const delayQueues = [0, 1, 2, 3].map((l) => `${ns}.delay.${l}`);
    const allQueues = [lane, ...delayQueues, `${ns}.dead`, `${ns}.unroutable`];

    // Even ids run twice (one reschedule), odd ids once.
    const expectedRuns = new Map<string, number>();
    const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
    try {
      for (let i = 0; i < MESSAGES; i++) {
        const id = `m${String(i).padStart(2, '0')}`;
        const total = i % 2 === 0 ? 2 : 1;
        expectedRuns.set(id, total);
        await scheduler.publish('work', { total }, { id });
      }
    } finally {
      await scheduler.close();
    }
    expect((await depths([lane]))[lane]).toBe(MESSAGES);

    // ---- first daemon: take CONCURRENCY messages, then SIGTERM while all of them run ----
    const first = await startCli(['start', '--config', configFile]);
    processes.push(first);
    await first.waitForLine((l) => l.msg === 'orbit started', 20_000, '"orbit started"');
    await waitFor(() => readAudit(audit).filter((l) => l.kind === 'start').length >= CONCURRENCY, 10_000, 'handler starts');
    await new Promise((r) => setTimeout(r, 200)); // prefetch = concurrency: no more should start
    const startedBeforeStop = readAudit(audit).filter((l) => l.kind === 'start');
    expect(startedBeforeStop).toHaveLength(CONCURRENCY);
    expect(readAudit(audit).filter((l) => l.kind === 'end')).toHaveLength(0);

    const signalledAt = Date.now();
    first.kill('SIGTERM');
    const exit = await first.waitForExit(SHUTDOWN_TIMEOUT_MS + 5000);
    const shutdownMs = Date.now() - signalledAt;
    // Snapshot at once: rescheduled messages sit in delay level 2 for 4 s.
    const afterStop = await depths(allQueues);

    expect(exit.code).toBe(0);
    expect(shutdownMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 3000);
    // It really waited for the handlers rather than dropping them.
    expect(shutdownMs).toBeGreaterThan(HANDLER_MS / 2);

    // Every started handler wrote its end line; nothing new started after SIGTERM.
    const phase1 = readAudit(audit);
    const starts1 = phase1.filter((l) => l.kind === 'start').map((l) => `${l.id}/${l.runs}`).sort();
    const ends1 = phase1.filter((l) => l.kind === 'end').map((l) => `${l.id}/${l.runs}`).sort();
    expect(starts1).toHaveLength(CONCURRENCY);
    expect(ends1).toEqual(starts1);

    // The logs tell the same story.
    const stopping = first.logged('orbit stopping');
    expect(stopping).toHaveLength(1);
    expect(stopping[0]!.inFlight).toBe(CONCURRENCY);
    const stopped = first.logged('orbit stopped');
    expect(stopped).toHaveLength(1);
    expect(stopped[0]!.drained).toBe(true);
    expect(stopped[0]!.leftUnacked).toBe(0);

    // Outcomes settled: rescheduled ones wait in the delay levels, done ones are gone, the
    // lane queue holds exactly the never-started messages (nothing was left unacked).
    const startedIds = new Set(startedBeforeStop.map((l) => l.id));
    const rescheduled = [...startedIds].filter((id) => expectedRuns.get(id)! > 1).length;
    expect(afterStop[lane]).toBe(MESSAGES - CONCURRENCY);
    expect(delayQueues.reduce((n, q) => n + afterStop[q]!, 0)).toBe(rescheduled);
    expect(afterStop[`${ns}.dead`]).toBe(0);
    expect(afterStop[`${ns}.unroutable`]).toBe(0);

    // ---- second daemon: finishes everything ----
    const second = await startCli(['start', '--config', configFile]);
    processes.push(second);
    const complete = (): boolean => {
      const ends = readAudit(audit).filter((l) => l.kind === 'end');
      return [...expectedRuns].every(([id, total]) => ends.filter((l) => l.id === id).length >= total);
    };
    await waitFor(complete, 30_000, 'every message to finish all its runs');
    // Room for any duplicate to show up (a redelivery would start at once).
    await new Promise((r) => setTimeout(r, 1500));
    second.kill('SIGTERM');
    const exit2 = await second.waitForExit(SHUTDOWN_TIMEOUT_MS + 5000);
    expect(exit2.code).toBe(0);

    // Each id ran exactly the expected runs, in order, each start matched by its end.
    const all = readAudit(audit);
    for (const [id, total] of expectedRuns) {
      const expected = Array.from({ length: total }, (_, r) => r);
      expect({ id, starts: all.filter((l) => l.kind === 'start' && l.id === id).map((l) => l.runs) }).toEqual({ id, starts: expected });
      expect({ id, ends: all.filter((l) => l.kind === 'end' && l.id === id).map((l) => l.runs) }).toEqual({ id, ends: expected });
    }
    const final = await depths(allQueues);
    expect(final).toEqual(Object.fromEntries(allQueues.map((q) => [q, 0])));
    const problems = (p: CliProcess) => p.lines.filter((l) => l.level === 'error' || l.level === 'fatal' || 'raw' in l);
    expect(problems(first)).toEqual([]);
    expect(problems(second)).toEqual([]);
  });

  test('handler modules load from the config: .mjs with `export async function handle`, .cjs with a default export, .js with module.exports = fn', async () => {
    const audit = join(dir, 'audit.log');
    writeFileSync(
      join(dir, 'esm-handler.mjs'),
      `import { appendFileSync } from 'node:fs';
export async function handle(message) {
  appendFileSync(${JSON.stringify(audit)}, 'esm ' + message.id + ' ' + message.runs + ' ' + message.json().k + '\\n');
}
`,
    );
    writeFileSync(
      join(dir, 'default-handler.cjs'),
      `const { appendFileSync } = require('node:fs');
exports.default = async function (message) {
  appendFileSync(${JSON.stringify(audit)}, 'cjs ' + message.id + ' ' + message.runs + ' ' + message.json().k + '\\n');
  return message.runs === 0 ? { reschedule: { delay: 0 } } : { done: true };
};
`,
    );
    writeFileSync(
      join(dir, 'fn-handler.js'),
      `const { appendFileSync } = require('node:fs');
module.exports = async (message) => {
  appendFileSync(${JSON.stringify(audit)}, 'fn ' + message.id + ' ' + message.runs + ' ' + message.json().k + '\\n');
};
`,
    );
    const configFile = writeConfigFile(dir, ns, {
      shutdown: { timeout: '5s' },
      lanes: [
        { name: 'esm', concurrency: 2, handler: './esm-handler.mjs' },
        { name: 'cjs', concurrency: 2, handler: './default-handler.cjs' },
        { name: 'fn', concurrency: 2, handler: join(dir, 'fn-handler.js') },
      ],
    });
    const config = loadConfig({ configFile, env: {} });
    const daemon = await startCli(['start', '--config', configFile]);
    processes.push(daemon);
    await daemon.waitForLine((l) => l.msg === 'orbit started', 20_000, '"orbit started"');

    const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
    try {
      for (const lane of ['esm', 'cjs', 'fn']) {
        for (const k of [1, 2]) await scheduler.publish(lane, { k }, { id: `${lane}-${k}` });
      }
    } finally {
      await scheduler.close();
    }
    // cjs reschedules once with delay 0, so it runs twice.
    await waitFor(() => readAudit(audit).length >= 8, 15_000, 'every handler to run');
    await new Promise((r) => setTimeout(r, 300));
    daemon.kill('SIGTERM');
    expect((await daemon.waitForExit(10_000)).code).toBe(0);

    const lines = readAudit(audit)
      .map((l) => `${l.kind} ${l.id} ${l.runs} ${l.extra}`)
      .sort();
    expect(lines).toEqual(
      [
        'esm esm-1 0 1',
        'esm esm-2 0 2',
        'cjs cjs-1 0 1',
        'cjs cjs-1 1 1',
        'cjs cjs-2 0 2',
        'cjs cjs-2 1 2',
        'fn fn-1 0 1',
        'fn fn-2 0 2',
      ].sort(),
    );
    expect(daemon.lines.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  });
});
