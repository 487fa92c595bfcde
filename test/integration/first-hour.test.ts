/**
 * What tripped a new user in the first hour (issue 15's smaller items), run through the built
 * CLI as a user runs it: a JSON string body for a json lane, `--at` as epoch ms, a past
 * `--at`, an HTTP port already taken, a daemon with no lanes, seed's progress bar on a terminal.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AMQP_URL, deleteNamespace, queueDepth, randomNamespace, withChannel, writeConfigFile } from '../helpers/broker';
import { spawnSync } from 'node:child_process';
import { CLI_MAIN, cliEnv, ensureBuilt, runCli, startCli } from '../helpers/cli';

jest.setTimeout(60_000);

let dir: string;
let ns: string;
let configFile: string;

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'orbit-first-hour-'));
  ns = randomNamespace('first');
  configFile = writeConfigFile(dir, ns, {
    amqp: { url: AMQP_URL },
    delay: { unit: '1s', levels: 5, tolerance: 0 },
    log: { level: 'warn' },
    lanes: [{ name: 'j', format: 'json' }, { name: 'r' }],
  });
}, 180_000);

afterAll(async () => {
  await deleteNamespace(ns);
  rmSync(dir, { recursive: true, force: true });
});

async function take(queue: string): Promise<{ body: string; due: unknown }> {
  const msg = await withChannel((ch) => ch.get(queue, { noAck: true }));
  if (!msg) throw new Error(`nothing in ${queue}`);
  return { body: msg.content.toString('utf8'), due: (msg.properties.headers ?? {})['x-orbit-due'] };
}

describe('orbit publish --body', () => {
  test('a JSON string for a json lane is stored as JSON (with its quotes), so the lane can parse it', async () => {
    const res = await runCli(['publish', '--config', configFile, '--lane', 'j', '--body', '"hello"']);
    expect(res.code).toBe(0);
    expect((await take(`${ns}.lane.j`)).body).toBe('"hello"');
  });

  test('the same for a raw lane is the text itself', async () => {
    const res = await runCli(['publish', '--config', configFile, '--lane', 'r', '--body', '"hello"']);
    expect(res.code).toBe(0);
    expect((await take(`${ns}.lane.r`)).body).toBe('hello');
  });

  test('a JSON line whose body is a string, for a json lane, is stored as a JSON string too', async () => {
    const input = `${JSON.stringify({ lane: 'j', body: 'fine' })}\n`;
    const ok = await runCli(['publish', '--config', configFile], { input });
    expect(ok.code).toBe(0);
    expect((await take(`${ns}.lane.j`)).body).toBe('"fine"');
  });
});

describe('orbit publish --at', () => {
  test('epoch ms is taken, as the help says', async () => {
    // The delay is what is left of 15 s when the CLI publishes: 9–15 units (binary 1001–1111)
    // while its start takes under 7 s, and every such delay waits first in the highest level
    // it spells, delay.3 (8 s). (At 8 s ahead, a start over 1 s on a loaded machine left 7
    // units, binary 0111, seen in CI.)
    const at = Date.now() + 15_000;
    const res = await runCli(['publish', '--config', configFile, '--lane', 'r', '--at', String(at), '--body', '{}']);
    expect(res.code).toBe(0);
    expect(Date.parse((JSON.parse(res.stdout) as { dueAt: string }).dueAt)).toBe(at);
    expect(await queueDepth(`${ns}.delay.3`)).toBe(1);
  });

  test('a past time is due now: the message goes to the lane, due when it was published (not in 1970)', async () => {
    const before = Date.now();
    const res = await runCli(['publish', '--config', configFile, '--lane', 'r', '--at', '1970-01-02T00:00:00Z', '--body', '{}']);
    expect(res.code).toBe(0);
    const { due } = await take(`${ns}.lane.r`);
    expect(Number(due)).toBeGreaterThanOrEqual(before);
  });
});

describe('orbit start', () => {
  let blocker: Server | undefined;

  afterEach(async () => {
    await new Promise<void>((r) => (blocker ? blocker.close(() => r()) : r()));
    blocker = undefined;
  });

  test('an HTTP port already in use exits 2 and says to set http.port', async () => {
    const server = createServer();
    blocker = server;
    const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
    // No lanes: no handlers to load first, so the port is the first thing start meets.
    const noLanes = writeConfigFile(mkdtempSync(join(dir, 'port-')), ns, { amqp: { url: AMQP_URL }, lanes: [] });
    const res = await runCli(['start', '--config', noLanes, '--set', `http.port=${port}`, '--set', 'http.host=127.0.0.1'], { timeoutMs: 30_000 });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('http.port');
    expect(res.stderr).toContain('already in use');
  });

  test('with no lanes configured it warns instead of running silently', async () => {
    const empty = writeConfigFile(mkdtempSync(join(dir, 'empty-')), ns, { amqp: { url: AMQP_URL }, lanes: [] });
    const daemon = await startCli(['start', '--config', empty]);
    try {
      const line = await daemon.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('no lanes configured'), 30_000, 'the no-lanes warning');
      expect(line.level).toBe('warn');
    } finally {
      await daemon.destroy();
    }
  });
});

describe('orbit seed on a terminal', () => {
  test('the progress bar is not torn by info log lines ("amqp connected") at the default log level', async () => {
    await ensureBuilt();
    const infoConfig = writeConfigFile(mkdtempSync(join(dir, 'seed-')), ns, {
      amqp: { url: AMQP_URL },
      delay: { unit: '1s', levels: 5, tolerance: 0 },
      log: { level: 'info' },
      lanes: [{ name: 'r' }],
    });
    // script(1) gives the command a pseudo-terminal, as a user's shell would; what the
    // terminal shows comes out on script's stdout.
    const command = `${process.execPath} ${CLI_MAIN} seed --config ${infoConfig} --lane r --generate 3000`;
    const run = spawnSync('script', ['-qec', command, '/dev/null'], { env: cliEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('seeding [');
    expect(run.stdout).toContain('"confirmed":3000');
    expect(run.stdout).not.toContain('amqp connected');
  });
});
