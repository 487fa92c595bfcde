/**
 * The CLI as users run it (`node dist/src/cli/main.js …`): exit codes, what goes to stdout
 * and stderr, and what reaches the broker.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AMQP_URL, deleteNamespace, queueDepth, randomNamespace, withChannel } from '../helpers/broker';
import { ensureBuilt, REPO_ROOT, runCli } from '../helpers/cli';
import { brokerFeatures } from '../../src/topology/broker-features';

jest.setTimeout(30_000);

let dir: string;
let ns: string;
let configFile: string;

function writeJson(name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

/** True when the queue exists (checked on a throwaway channel: a miss closes it). */
async function queueExists(queue: string): Promise<boolean> {
  return withChannel(async (ch) => {
    ch.on('error', () => undefined);
    await ch.checkQueue(queue);
    return true;
  }).catch(() => false);
}

async function exchangeExists(exchange: string): Promise<boolean> {
  return withChannel(async (ch) => {
    ch.on('error', () => undefined);
    await ch.checkExchange(exchange);
    return true;
  }).catch(() => false);
}

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'orbit-cli-'));
  ns = randomNamespace('cli');
  configFile = writeJson('orbit.json', {
    namespace: ns,
    amqp: { url: AMQP_URL },
    delay: { unit: '1s', levels: 5, tolerance: 0 },
    log: { level: 'warn' },
    http: { port: 0 },
    // Unbundled: the publish tests read single messages from the lanes (bundles: bundles.test.ts).
    lanes: [{ name: 'a', bundle: { max: 1 } }, { name: 'b', bundle: { max: 1 } }, { name: 'c', bundle: { max: 1 } }],
  });
}, 180_000);

afterAll(async () => {
  await deleteNamespace(ns);
  rmSync(dir, { recursive: true, force: true });
});

describe('orbit config', () => {
  test('prints the effective configuration with the password redacted, exit 0', async () => {
    const res = await runCli(['config', '--namespace', ns, '--amqp-url', 'amqp://guest:s3cret-pw@127.0.0.1:5672/']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).not.toContain('s3cret-pw');
    const printed = JSON.parse(res.stdout) as { namespace: string; amqp: { url: string } };
    expect(printed.namespace).toBe(ns);
    expect(printed.amqp.url).toBe('amqp://guest:***@127.0.0.1:5672/');
  });

  test('prints a valid config file in its own keys and units: saved and loaded again, it prints the same', async () => {
    const file = writeJson('round-trip.json', {
      namespace: ns,
      delay: { unit: '100ms', tolerance: '2%' },
      retry: { backoff: { initial: '250ms' } },
      lanes: [
        { name: 'files', handler: join(REPO_ROOT, 'examples', 'log-and-reschedule.js'), timeout: '90s', workAhead: { idle: '1m' } },
        { name: 'web', handler: { url: 'http://u:pw@127.0.0.1:1/', headers: { Authorization: { env: 'SOME_TOKEN' }, 'X-Caller': 'literal-secret' } }, rateLimit: { max: 5, per: '2s' } },
      ],
    });
    const first = await runCli(['config', '--config', file]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const printed = JSON.parse(first.stdout) as Record<string, unknown> & {
      delay: Record<string, unknown>;
      lanes: Array<Record<string, unknown>>;
    };
    // The config's own vocabulary, not the resolved shape (unitMs, timeoutMs, httpHandler).
    expect(first.stdout).not.toMatch(/unitMs|timeoutMs|httpHandler|idleMs|"urls"/);
    expect(printed.delay).toMatchObject({ unit: '100ms', tolerance: '2%' });
    expect(printed.lanes[0]).toMatchObject({ name: 'files', timeout: '1m30s', workAhead: { idle: '1m' } });
    expect(printed.lanes[1]).toMatchObject({
      handler: { url: 'http://u:***@127.0.0.1:1/', headers: { Authorization: { env: 'SOME_TOKEN' }, 'X-Caller': '***' } },
      rateLimit: { max: 5, per: '2s' },
    });
    expect(first.stdout).not.toContain('literal-secret');
    const again = await runCli(['config', '--config', writeJson('round-trip-printed.json', printed)]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(first.stdout);
  });

  test('a lane handler file that is not there exits 2 naming each lane', async () => {
    const file = writeJson('missing-handler.json', {
      namespace: ns,
      lanes: [{ name: 'ok' }, { name: 'a', handler: 'no-such-handler.js' }, { name: 'b', handler: 'handlers/gone.mjs' }],
    });
    const res = await runCli(['config', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain(`lanes[1].handler: handler module not found: ${join(dir, 'no-such-handler.js')}`);
    expect(res.stderr).toContain(`lanes[2].handler: handler module not found: ${join(dir, 'handlers', 'gone.mjs')}`);
    expect(res.stderr).toContain('[CONFIG_INVALID]');
  });

  test('a bad duration exits 2 naming the key', async () => {
    const res = await runCli(['config', '--set', 'delay.unit=5x']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('delay.unit');
    expect(res.stderr).toContain('5x');
  });

  test('an unknown key in the JSON config file exits 2 naming the key', async () => {
    const file = writeJson('unknown-key.json', { namespace: ns, bogusKey: 1 });
    const res = await runCli(['config', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('bogusKey');
  });

  test('a duplicate lane name exits 2 naming lanes[1].name', async () => {
    const file = writeJson('duplicate-lane.json', { namespace: ns, lanes: [{ name: 'x' }, { name: 'x' }] });
    const res = await runCli(['config', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('lanes[1].name');
  });
});

describe('orbit publish', () => {
  test('--body with --delay prints id and dueAt; the message waits in its delay level', async () => {
    const before = Date.now();
    // 8 s = binary 1000: published to level 3 (TTL 8 s), where it stays long enough to count.
    const res = await runCli(['publish', '--config', configFile, '--lane', 'a', '--delay', '8s', '--body', '{"x":1}']);
    const after = Date.now();
    expect(res.code).toBe(0);
    const printed = JSON.parse(res.stdout) as { id: string; lane: string; dueAt: string };
    expect(printed.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(printed.lane).toBe('a');
    const due = Date.parse(printed.dueAt);
    expect(due).toBeGreaterThanOrEqual(before + 8000);
    expect(due).toBeLessThanOrEqual(after + 8000);
    expect(await queueDepth(`${ns}.delay.3`)).toBe(1);
  });

  test('--body without delay goes straight to the lane queue, with the printed id', async () => {
    const res = await runCli(['publish', '--config', configFile, '--lane', 'b', '--id', 'my-id-1', '--body', '{"y":2}']);
    expect(res.code).toBe(0);
    const printed = JSON.parse(res.stdout) as { id: string; dueAt: string };
    expect(printed.id).toBe('my-id-1');
    expect(Math.abs(Date.parse(printed.dueAt) - Date.now())).toBeLessThan(10_000);
    expect(await queueDepth(`${ns}.lane.b`)).toBe(1);
    const msg = await withChannel((ch) => ch.get(`${ns}.lane.b`, { noAck: true }));
    expect(msg && msg.properties.messageId).toBe('my-id-1');
    expect(msg && JSON.parse(msg.content.toString('utf8'))).toEqual({ y: 2 });
  });

  test('JSON lines on stdin: a bad line 3 exits 2 naming it, and lines 1–2 are published', async () => {
    const input = ['{"body":{"n":1},"lane":"c"}', '{"body":{"n":2}}', '{"body": oops', '{"body":{"n":4}}', ''].join('\n');
    const res = await runCli(['publish', '--config', configFile, '--lane', 'c'], { input });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('line 3');
    expect(res.stderr).toContain('published 2 message(s)');
    expect(await queueDepth(`${ns}.lane.c`)).toBe(2);
  });

  test('an unknown lane exits 2 and publishes nothing', async () => {
    const res = await runCli(['publish', '--config', configFile, '--lane', 'nope', '--body', '{}']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('nope');
    expect(await queueExists(`${ns}.lane.nope`)).toBe(false);
  });
});

describe('orbit cancel and publish --replace', () => {
  test('cancel --id and --file write one tombstone per id to the stream; bad input exits 2 writing none', async () => {
    const ids = join(dir, 'ids.txt');
    writeFileSync(ids, 'k1\n\n  k2  \nk3\n');
    const one = await runCli(['cancel', '--config', configFile, '--id', 'k0']);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toMatchObject({ cancelled: 1 });
    const many = await runCli(['cancel', '--config', configFile, '--file', ids]);
    expect(many.code).toBe(0);
    expect(JSON.parse(many.stdout)).toMatchObject({ cancelled: 3 });
    const none = await runCli(['cancel', '--config', configFile], { input: '' });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('nothing to cancel');
    const both = await runCli(['cancel', '--config', configFile, '--id', 'x', '--file', ids]);
    expect(both.code).toBe(2);
    // What reached the stream: the four cancels, in order (read from its start, as a daemon does).
    const seen = await withChannel(async (ch) => {
      await ch.prefetch(100, false);
      const out: string[] = [];
      await new Promise<void>((resolve) => {
        void ch.consume(`${ns}.cancelled`, (m) => {
          if (!m) return;
          if (typeof m.properties.messageId === 'string') out.push(m.properties.messageId);
          ch.ack(m);
          if (out.length === 4) resolve();
        }, { arguments: { 'x-stream-offset': 'first' } });
      });
      return out;
    });
    expect(seen).toEqual(['k0', 'k1', 'k2', 'k3']);
  });

  test('publish --replace needs --id, and sends the cancel and the message', async () => {
    const missing = await runCli(['publish', '--config', configFile, '--lane', 'a', '--replace', '--body', '{}']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--replace needs --id');
    const res = await runCli(['publish', '--config', configFile, '--lane', 'a', '--id', 'r1', '--replace', '--delay', '8s', '--body', '{"v":2}']);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ id: 'r1', lane: 'a' });
  });
});

describe('orbit topology', () => {
  test('--dry-run prints the exchanges and queues without declaring anything', async () => {
    const ns2 = randomNamespace('clitopo');
    try {
      // The broker under test, not the default (the shared node): a dry run that declared anyway must show.
      const res = await runCli(['topology', '--dry-run', '--namespace', ns2, '--amqp-url', AMQP_URL, '--set', 'delay.levels=3', '--set', 'delay.tolerance=0', '--set', 'lanes=[{"name":"q"}]']);
      expect(res.code).toBe(0);
      for (const name of [`${ns2}.deliver`, `${ns2}.unroutable`, `${ns2}.delay.2`, `${ns2}.delay.1`, `${ns2}.delay.0`]) {
        expect(res.stdout).toContain(`  ${name}  `);
      }
      expect(res.stdout).toContain('exchanges (5):');
      expect(res.stdout).toContain(`${ns2}.lane.q`);
      expect(await exchangeExists(`${ns2}.deliver`)).toBe(false);
      expect(await queueExists(`${ns2}.dead`)).toBe(false);
    } finally {
      await deleteNamespace(ns2);
    }
  });

  test('declares every exchange and queue it prints', async () => {
    const ns2 = randomNamespace('clitopo');
    try {
      const res = await runCli(['topology', '--json', '--namespace', ns2, '--amqp-url', AMQP_URL, '--set', 'delay.levels=3', '--set', 'delay.tolerance=0', '--set', 'lanes=[{"name":"q"}]', '--log-level', 'warn']);
      expect(res.code).toBe(0);
      const topology = JSON.parse(res.stdout) as { exchanges: Array<{ name: string }>; queues: Array<{ name: string }> };
      expect(topology.queues.map((q) => q.name)).toEqual(expect.arrayContaining([`${ns2}.lane.q`, `${ns2}.dead`, `${ns2}.delay.0`]));
      for (const q of topology.queues) expect({ queue: q.name, exists: await queueExists(q.name) }).toEqual({ queue: q.name, exists: true });
      for (const e of topology.exchanges) expect({ exchange: e.name, exists: await exchangeExists(e.name) }).toEqual({ exchange: e.name, exists: true });
    } finally {
      await deleteNamespace(ns2);
    }
  });

  test('a quorum lane with priorities: declared on 4.x (two levels), refused on 3.x naming the key (exit 2)', async () => {
    const ns2 = randomNamespace('clitopo');
    const version = await withChannel(async (ch) => String(ch.connection.serverProperties.version));
    try {
      const res = await runCli(['topology', '--json', '--namespace', ns2, '--amqp-url', AMQP_URL, '--set', 'delay.levels=2', '--set', 'delay.tolerance=0', '--set', 'lanes=[{"name":"q","queueType":"quorum"}]', '--log-level', 'silent']);
      if (brokerFeatures(version).quorumPriorities) {
        expect(res.code).toBe(0);
        const topology = JSON.parse(res.stdout) as { queues: Array<{ name: string; arguments: Record<string, unknown> }> };
        expect(topology.queues.find((q) => q.name === `${ns2}.lane.q`)?.arguments).toEqual({ 'x-queue-type': 'quorum', 'x-delivery-limit': 2147483647 });
        expect(await queueExists(`${ns2}.lane.q`)).toBe(true);
      } else {
        expect(res.code).toBe(2);
        expect(res.stderr).toContain(`lanes[0].maxPriority is 9 but RabbitMQ ${version} quorum queues have no priorities (4.0 and later have two levels)`);
        expect(res.stderr).toContain('[CONFIG_INVALID]');
        expect(await queueExists(`${ns2}.lane.q`)).toBe(false);
      }
    } finally {
      await deleteNamespace(ns2);
    }
  });
});
