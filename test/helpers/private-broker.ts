import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The machine's shared node: a private broker must never address it. */
const SHARED_NODE = 'rabbit@localhost';
const NODE_PREFIX = 'orbit-test-';

/** A free TCP port on 127.0.0.1 (bound to port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A RabbitMQ node of its own, for tests that stop, kill or alarm a broker — things that
 * must never happen to the shared `rabbit@localhost` (an alarm blocks every publisher on a
 * node). One node per test file (`beforeAll` → `start`, `afterAll` → `stop`); starting
 * takes about 3–5 s.
 *
 * How it runs on this machine (Debian's rabbitmq-server 3.10 as root): the
 * `/usr/sbin/rabbitmq-server` and `/usr/sbin/rabbitmqctl` wrappers re-run themselves as
 * user `rabbitmq` with `su` (which keeps the environment but sets HOME=/var/lib/rabbitmq),
 * so server and CLI both use `/var/lib/rabbitmq/.erlang.cookie` — exactly how
 * `rabbitmqctl status` reaches the shared node. No cookie handling is needed; the node's
 * dirs only have to belong to `rabbitmq`. `RABBITMQ_CONF_ENV_FILE` points to an empty file
 * so `/etc/rabbitmq/rabbitmq-env.conf` (which names the shared node) is not read.
 */
export interface PrivateBrokerOptions {
  /**
   * Extra `rabbitmq.conf` lines (e.g. a TLS listener). A function gets the node's base dir
   * and AMQP port first, for settings that name them.
   */
  readonly extraConfig?: readonly string[] | ((node: { baseDir: string; port: number }) => readonly string[] | Promise<readonly string[]>);
}

export class PrivateBroker {
  constructor(private readonly options: PrivateBrokerOptions = {}) {}

  readonly nodename = `${NODE_PREFIX}${randomBytes(4).toString('hex')}@localhost`;
  port = 0;
  distPort = 0;
  /** Temp dir holding mnesia/, log/, rabbitmq.conf, enabled_plugins and env.conf. */
  baseDir: string | undefined;
  /** OS pid of the node's beam process (from its pid file). */
  pid: number | undefined;
  /** How long `start()` took, ms. */
  startMs = 0;
  private stopped = false;
  private readonly onExit = () => {
    // Last resort when afterAll never ran: do not leave a node behind.
    if (this.pid && this.ownsPid(this.pid)) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };

  /** `amqp://guest:guest@127.0.0.1:<port>` (guest may connect: `loopback_users = none`). */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /** The exact environment given to `rabbitmq-server` (for the record and for debugging). */
  get env(): Record<string, string> {
    const base = this.requireBase();
    return {
      RABBITMQ_NODENAME: this.nodename,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
      RABBITMQ_LOG_BASE: join(base, 'log'),
      RABBITMQ_CONFIG_FILE: join(base, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
      RABBITMQ_CONF_ENV_FILE: join(base, 'env.conf'),
      // Keep Erlang distribution on loopback, as the shared node's env file does.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
  }

  /** Starts the node and waits until it accepts AMQP connections. */
  async start(timeoutMs = 60_000): Promise<this> {
    const began = Date.now();
    this.assertPrivate();
    this.port = await freePort();
    do this.distPort = await freePort();
    while (this.distPort === this.port);
    this.baseDir = await fs.mkdtemp(join(tmpdir(), 'orbit-rmq-'));
    const base = this.baseDir;
    await fs.mkdir(join(base, 'mnesia'));
    await fs.mkdir(join(base, 'log'));
    const extra = typeof this.options.extraConfig === 'function'
      ? await this.options.extraConfig({ baseDir: base, port: this.port })
      : this.options.extraConfig ?? [];
    await fs.writeFile(
      join(base, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = 127.0.0.1:${this.port}`,
        'loopback_users = none',
        ...extra,
        '',
      ].join('\n'),
    );
    await fs.writeFile(join(base, 'enabled_plugins'), '[].\n');
    await fs.writeFile(join(base, 'env.conf'), '');
    // The node runs as `rabbitmq` (the Debian wrapper su's to it): it must own its dirs.
    await run('chown', ['-R', 'rabbitmq:rabbitmq', base]);
    await fs.chmod(base, 0o755);
    process.once('exit', this.onExit);
    await this.boot(began, timeoutMs);
    this.startMs = Date.now() - began;
    return this;
  }

  /**
   * Boots the node again on the same name, ports and data dir after `kill()` (or a clean
   * `rabbitmqctl stop`): durable queues and persistent messages come back from disk.
   * @returns how long the restart took, ms
   */
  async restart(timeoutMs = 60_000): Promise<number> {
    const began = Date.now();
    this.assertPrivate();
    if (this.stopped || !this.baseDir) throw new Error(`node ${this.nodename} was never started or is stopped for good`);
    if (this.pid !== undefined && this.ownsPid(this.pid)) throw new Error(`node ${this.nodename} is still running (pid ${this.pid})`);
    this.pid = undefined;
    await fs.rm(join(this.baseDir, 'mnesia', `${this.nodename}.pid`), { force: true });
    await this.boot(began, timeoutMs);
    return Date.now() - began;
  }

  /** `rabbitmq-server -detached`, then waits for the pid file, the AMQP port and the app. */
  private async boot(began: number, timeoutMs: number): Promise<void> {
    const base = this.requireBase();
    await run('rabbitmq-server', ['-detached'], { env: { ...process.env, ...this.env }, timeout: timeoutMs });
    // Polling the pid file and the AMQP port is much quicker than `rabbitmqctl wait` (which
    // polls slowly and costs a CLI VM start): the listener opens at the very end of boot.
    const deadline = began + timeoutMs;
    while (this.pid === undefined) {
      this.pid = this.readPid();
      if (this.pid === undefined) await this.checkDeadline(deadline, 'pid file');
    }
    if (!this.ownsPid(this.pid)) throw new Error(`pid ${this.pid} is not node ${this.nodename}`);
    while (!(await canConnect(this.port))) {
      if (!isAlive(this.pid)) throw new Error(`node ${this.nodename} exited during boot; see ${join(base, 'log')}`);
      await this.checkDeadline(deadline, `port ${this.port}`);
    }
    await this.ctl('await_startup', '--timeout', String(Math.max(1, Math.ceil((deadline - Date.now()) / 1000))));
  }

  /** Runs `rabbitmqctl -n <this node> …args`; resolves with stdout. */
  async ctl(...args: string[]): Promise<string> {
    this.assertPrivate();
    const { stdout } = await run('rabbitmqctl', ['-n', this.nodename, ...args], {
      env: cliEnv(),
      timeout: 90_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  }

  /** `rabbitmqctl stop_app`: the VM stays up, AMQP goes away, clients are disconnected. */
  async stopApp(): Promise<void> {
    await this.ctl('stop_app');
  }

  /** `rabbitmqctl start_app`, waiting until the node accepts connections again. */
  async startApp(): Promise<void> {
    await this.ctl('start_app');
    await this.ctl('await_startup', '--timeout', '60');
  }

  /** SIGKILL of the node's beam process (a crash: no clean shutdown, no goodbye to clients). */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (!pid || !this.ownsPid(pid)) return;
    process.kill(pid, 'SIGKILL');
    await this.waitForExit(pid, 10_000);
  }

  /**
   * Stops the node and removes its dirs. Safe in `afterAll` whatever happened before: never
   * started, half started, already stopped or killed. Never addresses any other node.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('exit', this.onExit);
    const pid = this.pid ?? this.readPid();
    if (this.baseDir) {
      if (pid === undefined || this.ownsPid(pid)) {
        await this.ctl('stop').catch(() => undefined);
      }
      if (pid !== undefined && !(await this.waitForExit(pid, 15_000)) && this.ownsPid(pid)) {
        process.kill(pid, 'SIGKILL');
        await this.waitForExit(pid, 5_000);
      }
      await fs.rm(this.baseDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** True when `pid` is a live process started as this node (checked in its environment). */
  private ownsPid(pid: number): boolean {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      return env.includes(`RABBITMQ_NODENAME=${this.nodename}`);
    } catch {
      return false;
    }
  }

  private readPid(): number | undefined {
    if (!this.baseDir) return undefined;
    try {
      const pid = Number(readFileSync(join(this.baseDir, 'mnesia', `${this.nodename}.pid`), 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private async checkDeadline(deadline: number, what: string): Promise<void> {
    if (Date.now() > deadline) throw new Error(`node ${this.nodename}: timed out waiting for ${what}`);
    await sleep(100);
  }

  private async waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!isAlive(pid)) return true;
      await sleep(50);
    }
    return !isAlive(pid);
  }

  private assertPrivate(): void {
    if (this.nodename === SHARED_NODE || !this.nodename.startsWith(NODE_PREFIX)) {
      throw new Error(`refusing to manage node ${this.nodename}`);
    }
  }

  private requireBase(): string {
    if (!this.baseDir) throw new Error('private broker not started');
    return this.baseDir;
  }
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** The CLI's environment: none of the node's RABBITMQ_* (a CLI given the dist port would derive its own ports from it). */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RABBITMQ_')) env[k] = v;
  return env;
}

/** Starts a private node; on failure stops whatever was started and rethrows. */
export async function startPrivateBroker(timeoutMs?: number, options?: PrivateBrokerOptions): Promise<PrivateBroker> {
  const broker = new PrivateBroker(options);
  try {
    return await broker.start(timeoutMs);
  } catch (err) {
    await broker.stop().catch(() => undefined);
    throw err;
  }
}
