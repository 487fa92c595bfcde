/**
 * Commands that only look declare nothing (a mistyped --namespace is reported, exit 2, and
 * leaves no trace on the broker), and only `orbit start` needs the HTTP handlers' secrets.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brokerFeatures } from '../../src/topology/broker-features';
import { AMQP_URL, deleteNamespace, randomNamespace, rabbitmqctl, withChannel } from '../helpers/broker';
import { ensureBuilt, runCli } from '../helpers/cli';

jest.setTimeout(60_000);

let dir: string;
const declared: string[] = [];

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'orbit-read-only-'));
}, 180_000);

afterAll(async () => {
  for (const ns of declared) await deleteNamespace(ns);
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

/** Every queue and exchange of the namespace on the broker, by rabbitmqctl (declares nothing itself). */
async function namesOf(namespace: string): Promise<string[]> {
  const list = async (command: string): Promise<string[]> =>
    (await rabbitmqctl('-q', command, 'name', '--no-table-headers')).split('\n').map((l) => l.trim()).filter(Boolean);
  const [queues, exchanges] = await Promise.all([list('list_queues'), list('list_exchanges')]);
  return [...queues, ...exchanges].filter((n) => n.startsWith(`${namespace}.`));
}

describe('a namespace that was never declared', () => {
  const ns = randomNamespace('nons');
  let configFile: string;

  beforeAll(() => {
    configFile = writeConfig('missing.json', {
      namespace: ns,
      amqp: { url: AMQP_URL },
      delay: { unit: '1s', levels: 5 },
      log: { level: 'silent' },
      lanes: [{ name: 'a' }, { name: 'b' }],
    });
  });

  test.each<[string, string[]]>([
    ['stats', ['stats']],
    ['stats --json', ['stats', '--json']],
    ['dlq list', ['dlq', 'list']],
    ['dlq list --queue unroutable', ['dlq', 'list', '--queue', 'unroutable']],
    ['dlq replay', ['dlq', 'replay']],
    ['dlq purge --yes', ['dlq', 'purge', '--yes']],
    ['migrate --dry-run', ['migrate', '--dry-run']],
    ['migrate', ['migrate']],
  ])('orbit %s exits 2 with NAMESPACE_NOT_FOUND', async (_name, args) => {
    const res = await runCli([...args, '-c', configFile]);
    expect({ code: res.code, stdout: res.stdout }).toEqual({ code: 2, stdout: '' });
    expect(res.stderr).toContain(
      `orbit: namespace "${ns}" not found on the broker (no queue ${ns}.dead): check --namespace / ORBIT_NAMESPACE, or run orbit topology to declare it [NAMESPACE_NOT_FOUND]`,
    );
  });

  test('--namespace on the command line is checked the same way', async () => {
    const other = randomNamespace('typo');
    const res = await runCli(['stats', '-c', configFile, '--namespace', other]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`namespace "${other}" not found on the broker`);
    expect(await namesOf(other)).toEqual([]);
  });

  test('afterwards the broker holds no queue or exchange of the namespace', async () => {
    // Runs after the commands above (jest runs a file's tests in order).
    expect(await namesOf(ns)).toEqual([]);
  });
});

describe('a declared namespace', () => {
  const ns = randomNamespace('roro');
  let configFile: string;

  beforeAll(async () => {
    declared.push(ns);
    configFile = writeConfig('declared.json', {
      namespace: ns,
      amqp: { url: AMQP_URL },
      delay: { unit: '1s', levels: 5 },
      log: { level: 'silent' },
      lanes: [{ name: 'a' }],
    });
    const res = await runCli(['topology', '-c', configFile]);
    expect(res.code).toBe(0);
  });

  test('stats, dlq list and migrate --dry-run work and declare nothing new', async () => {
    const before = (await namesOf(ns)).sort();
    expect(before).toContain(`${ns}.dead`);
    const stats = await runCli(['stats', '--json', '-c', configFile]);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ namespace: ns, dead: 0, unroutable: 0, lanes: [{ lane: 'a', ready: 0 }] });
    const list = await runCli(['dlq', 'list', '-c', configFile]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`${ns}.dead: 0 message(s)`);
    const dryRun = await runCli(['migrate', '--dry-run', '-c', configFile]);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toContain('nothing to migrate');
    expect((await namesOf(ns)).sort()).toEqual(before);
  });
});

describe('a declared namespace whose dead-letter queue an older orbit declared', () => {
  const ns = randomNamespace('rodrift');

  test('dlq list still compares it (passively found, not redeclared) and refuses to look into it on 4.x', async () => {
    declared.push(ns);
    const version = await withChannel(async (ch) => String(ch.connection.serverProperties.version));
    const configFile = writeConfig('drift.json', {
      namespace: ns,
      amqp: { url: AMQP_URL },
      delay: { unit: '1s', levels: 5, queueType: 'quorum' },
      log: { level: 'silent' },
      lanes: [{ name: 'a' }],
    });
    expect((await runCli(['topology', '-c', configFile])).code).toBe(0);
    // As a 3.x-era orbit left it: a quorum queue without orbit's delivery limit.
    await withChannel(async (ch) => {
      await ch.deleteQueue(`${ns}.dead`);
      await ch.assertQueue(`${ns}.dead`, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    });
    const res = await runCli(['dlq', 'list', '-c', configFile]);
    if (brokerFeatures(version).quorumDefaultDeliveryLimit) {
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('[QUEUE_NEEDS_MIGRATION]');
    } else {
      expect(res.code).toBe(0);
    }
  });
});

describe('HTTP handler header secrets: only orbit start reads them', () => {
  const ns = randomNamespace('nosec');
  let configFile: string;

  beforeAll(async () => {
    declared.push(ns);
    configFile = writeConfig('secrets.json', {
      namespace: ns,
      amqp: { url: AMQP_URL },
      delay: { unit: '1s', levels: 5 },
      log: { level: 'warn' },
      http: { port: 0 },
      lanes: [
        {
          name: 'web',
          handler: { url: 'http://127.0.0.1:9/jobs', headers: { Authorization: { env: 'RUN_TOKEN' }, 'X-Api-Key': { file: 'missing-key.txt' } } },
        },
      ],
    });
  });

  // RUN_TOKEN is unset in every child (cliEnv passes no ORBIT_*; the test removes it explicitly).
  const env = { RUN_TOKEN: undefined };

  test('publish, stats, dlq list and config work without them', async () => {
    const published = await runCli(['publish', '-c', configFile, '--lane', 'web', '--body', '{"x":1}'], { env });
    expect({ code: published.code, stderr: published.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(published.stdout)).toMatchObject({ lane: 'web' });

    const stats = await runCli(['stats', '--json', '-c', configFile], { env });
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({ lanes: [{ lane: 'web', ready: 1 }] });

    const list = await runCli(['dlq', 'list', '-c', configFile], { env });
    expect(list.code).toBe(0);

    const config = await runCli(['config', '-c', configFile], { env });
    expect(config.code).toBe(0);
    // Where each secret comes from, never its value (and none is read: RUN_TOKEN is not set).
    const printed = JSON.parse(config.stdout) as { lanes: Array<{ handler: { headers: Record<string, unknown> } }> };
    expect(printed.lanes[0]!.handler.headers).toEqual({ Authorization: { env: 'RUN_TOKEN' }, 'X-Api-Key': { file: join(dir, 'missing-key.txt') } });
  });

  test('orbit start fails at once, exit 2, naming each missing secret', async () => {
    const started = Date.now();
    const res = await runCli(['start', '-c', configFile], { env, timeoutMs: 20_000 });
    expect(res.code).toBe(2);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(res.stderr).toContain('lanes[0].handler.headers.Authorization: environment variable RUN_TOKEN is not set');
    expect(res.stderr).toContain(`lanes[0].handler.headers.X-Api-Key: file ${join(dir, 'missing-key.txt')} cannot be read (ENOENT)`);
    expect(res.stderr).toContain('[CONFIG_INVALID]');
  });
});
