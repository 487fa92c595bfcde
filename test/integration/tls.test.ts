/**
 * amqps:// end to end: a CA, a server certificate (SAN localhost, 127.0.0.1) and a client
 * certificate made with openssl; a private RabbitMQ node with a TLS listener on a loopback
 * port that requires a client certificate (verify_peer, fail_if_no_peer_cert). The real
 * `orbit start` and `orbit publish` connect with `amqp.tls: { ca, cert, key }` and a message
 * is processed; without the client certificate, or without the CA, the connection fails
 * with an error that says why. Credentials (the URL password, the key passphrase) never
 * appear in logs, `orbit config` output or error messages.
 */
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { loadConfig, Scheduler } from '../../src';
import { randomNamespace } from '../helpers/broker';
import { type CliProcess, ensureBuilt, REPO_ROOT, runCli, startCli } from '../helpers/cli';
import { freePort, type PrivateBroker, startPrivateBroker } from '../helpers/private-broker';

const run = promisify(execFile);
const USER = 'orbit-tls';
const PASSWORD = 'pw-Zq8-s3cr3t';
const PASSPHRASE = 'key-Pp7-s3cr3t';
const AUDIT_HANDLER = join(REPO_ROOT, 'test', 'faults', 'fixtures', 'audit-handler.js');

let dir: string;
let broker: PrivateBroker | undefined;
let tlsPort = 0;
const processes: CliProcess[] = [];

async function openssl(...args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir, timeout: 30_000 });
}

/** CA, server (localhost / 127.0.0.1) and client certificates; the client key also in an encrypted copy. */
async function makeCertificates(): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=orbit test CA');
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  await openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  await openssl('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=orbit client');
  await openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2', '-extfile', 'client.ext');
  await openssl('pkey', '-in', 'client.key', '-out', 'client-encrypted.key', '-aes256', '-passout', `pass:${PASSPHRASE}`);
}

/** Resolves once a TLS handshake with the listener succeeds (it opens with the AMQP listener, but may lag it). */
async function waitForTls(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(join(dir, 'ca.pem')),
        cert: readFileSync(join(dir, 'client.pem')),
        key: readFileSync(join(dir, 'client.key')),
      });
      socket.setTimeout(2000);
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`TLS listener on ${port} did not come up`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A pino logger that keeps every line as text. */
function capture(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

function configFile(name: string, settings: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(settings, null, 2));
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orbit-tls-'));
  chmodSync(dir, 0o755);
  await Promise.all([makeCertificates(), ensureBuilt()]);
  tlsPort = await freePort();
  broker = await startPrivateBroker(90_000, {
    extraConfig: ({ baseDir }) => {
      // Inside the node's own dir, which is handed to user rabbitmq before it boots.
      const tls = join(baseDir, 'tls');
      mkdirSync(tls);
      for (const f of ['ca.pem', 'server.pem', 'server.key']) copyFileSync(join(dir, f), join(tls, f));
      return [
        `listeners.ssl.1 = 127.0.0.1:${tlsPort}`,
        `ssl_options.cacertfile = ${join(tls, 'ca.pem')}`,
        `ssl_options.certfile = ${join(tls, 'server.pem')}`,
        `ssl_options.keyfile = ${join(tls, 'server.key')}`,
        'ssl_options.verify = verify_peer',
        'ssl_options.fail_if_no_peer_cert = true',
      ];
    },
  });
  await waitForTls(tlsPort, 30_000);
  await broker.ctl('add_user', USER, PASSWORD);
  await broker.ctl('set_permissions', '-p', '/', USER, '.*', '.*', '.*');
}, 180_000);

afterAll(async () => {
  for (const p of processes.splice(0)) await p.destroy();
  await broker?.stop();
  if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}, 60_000);

const url = () => `amqps://${USER}:${PASSWORD}@localhost:${tlsPort}`;

test('orbit start and orbit publish over amqps:// with CA, client certificate and key from the config: the message is processed', async () => {
  const ns = randomNamespace('tls');
  const audit = join(dir, 'audit.log');
  const file = configFile('orbit.json', {
    namespace: ns,
    // Paths relative to the config file's directory.
    amqp: { url: url(), reconnect: '500ms', tls: { ca: 'ca.pem', cert: 'client.pem', key: 'client-encrypted.key', passphrase: PASSPHRASE } },
    delay: { unit: '1s', levels: 4 },
    log: { level: 'debug' },
    http: { port: 0 },
    shutdown: { timeout: '5s' },
    lanes: [{ name: 'work', concurrency: 2, handler: AUDIT_HANDLER, workAhead: false }],
  });
  const daemon = await startCli(['start', '--config', file], { env: { FAULT_AUDIT: audit, FAULT_TOTAL: '1', FAULT_SLEEP_MS: '0' } });
  processes.push(daemon);
  await daemon.waitForLine((l) => l.msg === 'orbit started', 30_000, '"orbit started"');
  const connected = daemon.logged('amqp connected');
  expect(connected.length).toBeGreaterThanOrEqual(2);
  expect(connected[0]!.broker).toBe(`amqps://${USER}:***@localhost:${tlsPort}`);

  const published = await runCli(['publish', '--config', file, '--lane', 'work', '--id', 'over-tls', '--body', '{"hello":"tls"}'], { timeoutMs: 30_000 });
  expect({ code: published.code, stderr: published.stderr.split('\n').filter((l) => /"level":"(error|fatal)"/.test(l)) }).toEqual({ code: 0, stderr: [] });
  expect(JSON.parse(published.stdout)).toMatchObject({ id: 'over-tls', lane: 'work' });
  const deadline = Date.now() + 15_000;
  while (!(existsSync(audit) && /^end over-tls 0 /m.test(readFileSync(audit, 'utf8')))) {
    if (Date.now() > deadline) throw new Error('the message sent over TLS was not processed');
    await new Promise((r) => setTimeout(r, 50));
  }
  // The broker sees both of the daemon's connections as TLS, authenticated as the user.
  const conns = await broker!.ctl('-q', 'list_connections', 'user', 'ssl', 'peer_cert_subject', 'client_properties', '--no-table-headers');
  const mine = conns.split('\n').filter((l) => l.includes(`orbit:${ns}:`));
  expect(mine).toHaveLength(2);
  for (const line of mine) expect(line).toMatch(new RegExp(`^${USER}\\ttrue\\t.*orbit client`));

  daemon.kill('SIGTERM');
  const exit = await daemon.waitForExit(15_000);
  expect(exit.code).toBe(0);
  for (const text of [exit.stdout, exit.stderr, published.stdout, published.stderr]) {
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(PASSPHRASE);
  }
}, 90_000);

test('without the client certificate the broker refuses the handshake; without the CA the server certificate is refused; both errors say so, without credentials', async () => {
  const ns = randomNamespace('tlsno');
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no client certificate', { ca: join(dir, 'ca.pem') }, /certificate required|handshake failure|alert/i],
    ['no CA', { cert: join(dir, 'client.pem'), key: join(dir, 'client.key') }, /self[- ]signed|unable to (get|verify)|certificate/i],
  ];
  for (const [name, tls, reason] of cases) {
    const config = loadConfig({ overrides: { namespace: ns, 'amqp.url': url(), 'amqp.reconnect': '300ms', 'lanes': '[{"name":"work"}]', ...Object.fromEntries(Object.entries(tls).map(([k, v]) => [`amqp.tls.${k}`, String(v)])) }, env: {} });
    const { logger, lines } = capture();
    const scheduler = new Scheduler({ config, logger, connectTimeoutMs: 3000 });
    let error: unknown;
    try {
      await scheduler.publish('work', { x: 1 });
    } catch (err) {
      error = err;
    } finally {
      await scheduler.close();
    }
    expect({ name, failed: error instanceof Error }).toEqual({ name, failed: true });
    const failures = lines.map((l) => JSON.parse(l) as { msg?: string; err?: string; broker?: string }).filter((l) => l.msg === 'amqp connect failed');
    expect({ name, failures: failures.length > 0 }).toEqual({ name, failures: true });
    expect({ name, err: failures[0]!.err }).toEqual({ name, err: expect.stringMatching(reason) });
    expect(failures[0]!.broker).toBe(`amqps://${USER}:***@localhost:${tlsPort}`);
    const everything = `${lines.join('')}\n${(error as Error).message}\n${String((error as Error).stack)}`;
    expect(everything).not.toContain(PASSWORD);
  }
}, 60_000);

test('credentials never appear in `orbit config` output or in the errors of a failing `orbit publish`', async () => {
  const file = configFile('secret.json', {
    namespace: randomNamespace('tlscred'),
    amqp: {
      url: `amqps://${USER}:${PASSWORD}@localhost:${tlsPort},amqp://${USER}:${PASSWORD}@127.0.0.1:1`,
      tls: { ca: 'ca.pem', cert: 'client.pem', key: 'client-encrypted.key', passphrase: PASSPHRASE },
    },
    log: { level: 'debug' },
    lanes: [{ name: 'work' }],
  });
  const shown = await runCli(['config', '--config', file]);
  expect(shown.code).toBe(0);
  const printed = JSON.parse(shown.stdout) as { amqp: { url: string; tls: { passphrase: string } } };
  expect(printed.amqp.url).toBe(`amqps://${USER}:***@localhost:${tlsPort},amqp://${USER}:***@127.0.0.1:1`);
  expect(printed.amqp.tls.passphrase).toBe('***');

  // A port nobody listens on, the password in the URL, debug logging: every retry is logged
  // until the publish gives up.
  const closed = await freePort();
  const failing = await runCli(
    ['publish', '--config', file, '--amqp-url', `amqp://${USER}:${PASSWORD}@127.0.0.1:${closed}/vhost`, '--set', 'amqp.tls.ca=', '--set', 'amqp.tls.cert=',
      '--set', 'amqp.tls.key=', '--set', 'amqp.tls.passphrase=', '--lane', 'work', '--body', '{}'],
    { timeoutMs: 60_000 },
  );
  expect(failing.code).toBe(1);
  expect(failing.stderr).toMatch(/amqp connect failed/);
  expect(failing.stderr).toMatch(/^orbit: .+$/m);
  expect(failing.stderr).toContain(`amqp://${USER}:***@127.0.0.1:${closed}/vhost`);
  // A malformed URL with the password in it: the error names the list index, not the URL.
  const malformed = await runCli(['config', '--config', file, '--amqp-url', `amqp://${USER}:${PASSWORD}@[::1`]);
  expect(malformed.code).toBe(2);
  expect(malformed.stderr).toMatch(/amqp\.url\[0\]/);
  for (const res of [shown, failing, malformed]) {
    expect(res.stdout + res.stderr).not.toContain(PASSWORD);
    expect(res.stdout + res.stderr).not.toContain(PASSPHRASE);
  }
}, 90_000);
