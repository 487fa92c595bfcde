/**
 * A broker that refuses the login or the vhost fails a command, and `orbit start`, at once
 * with the broker's reason (exit 2: configuration); an unreachable one after
 * `amqp.connectTimeout`, naming it without the password (exit 1).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AMQP_URL, randomNamespace } from '../helpers/broker';
import { ensureBuilt, runCli } from '../helpers/cli';

jest.setTimeout(60_000);

/** Far above what a refusal may take, so a refusal that waited it out would be seen. */
const LONG_CONNECT_TIMEOUT = '30s';
/** A refusal must be reported well within this (the CLI's own start-up included). */
const FAST_MS = 10_000;

let dir: string;
let configFile: string;
const ns = randomNamespace('conn');

/** The broker under test's URL with another password or vhost. */
function brokerUrl(change: (url: URL) => void): string {
  const url = new URL(AMQP_URL.split(',')[0]!.trim());
  change(url);
  return url.toString();
}

/** A local port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  await ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'orbit-connect-'));
  writeFileSync(join(dir, 'handler.js'), 'module.exports = async () => ({ done: true });\n');
  configFile = join(dir, 'orbit.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      namespace: ns,
      delay: { unit: '1s', levels: 5 },
      log: { level: 'silent' },
      http: { port: 0 },
      lanes: [{ name: 'a', handler: './handler.js' }],
    }),
  );
}, 180_000);

afterAll(() => {
  // Nothing reached the broker: no namespace to delete.
  rmSync(dir, { recursive: true, force: true });
});

describe.each<[string, string[]]>([
  ['stats', ['stats']],
  ['start', ['start']],
])('orbit %s', (_name, command) => {
  test('a wrong password fails at once, exit 2, with ACCESS_REFUSED and the broker reason', async () => {
    const url = brokerUrl((u) => (u.password = 'wrong-pw'));
    const started = Date.now();
    const res = await runCli([...command, '-c', configFile, '--amqp-url', url, '--set', `amqp.connectTimeout=${LONG_CONNECT_TIMEOUT}`]);
    const elapsed = Date.now() - started;
    expect(res.code).toBe(2);
    expect(elapsed).toBeLessThan(FAST_MS);
    expect(res.stderr).toContain('refused the login');
    expect(res.stderr).toContain('ACCESS_REFUSED - Login was refused');
    expect(res.stderr).toContain('[ACCESS_REFUSED]');
    expect(res.stderr + res.stdout).not.toContain('wrong-pw');
  });

  test('a vhost that does not exist fails at once, exit 2, with VHOST_NOT_ALLOWED naming it', async () => {
    const vhost = `nope-${ns}`;
    const url = brokerUrl((u) => (u.pathname = `/${vhost}`));
    const started = Date.now();
    const res = await runCli([...command, '-c', configFile, '--amqp-url', url, '--set', `amqp.connectTimeout=${LONG_CONNECT_TIMEOUT}`]);
    const elapsed = Date.now() - started;
    expect(res.code).toBe(2);
    expect(elapsed).toBeLessThan(FAST_MS);
    expect(res.stderr).toContain(`refused vhost "${vhost}"`);
    expect(res.stderr).toContain('NOT_ALLOWED');
    expect(res.stderr).toContain('[VHOST_NOT_ALLOWED]');
  });

  test('a closed port fails after amqp.connectTimeout, exit 1, with NOT_CONNECTED naming the broker without its password', async () => {
    const port = await closedPort();
    const url = `amqp://guest:s3cret-pw@127.0.0.1:${port}`;
    const started = Date.now();
    const res = await runCli([...command, '-c', configFile, '--amqp-url', url, '--set', 'amqp.connectTimeout=1s']);
    const elapsed = Date.now() - started;
    expect(res.code).toBe(1);
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(FAST_MS);
    expect(res.stderr).toContain(`cannot connect to the broker at amqp://guest:***@127.0.0.1:${port} within 1s (amqp.connectTimeout)`);
    expect(res.stderr).toContain(`ECONNREFUSED 127.0.0.1:${port}`);
    expect(res.stderr).toContain('[NOT_CONNECTED]');
    expect(res.stderr + res.stdout).not.toContain('s3cret-pw');
  });
});
