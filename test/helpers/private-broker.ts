import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, promises as fs, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ctlAt, ctlEnv, defaultPrivateRabbitmq, requireRabbitmq4Root, SHARED_NODE, watchNodes } from './rabbitmq';
import { canConnect } from './can-connect';
import { sleep } from './wait';

export { rabbitmq4Root, describeRabbitmq4, requireRabbitmq4Root } from './rabbitmq';

const run = promisify(execFile);

const NODE_PREFIX = 'orbit-test-';
/** Where a 4.0 node's dirs live inside the RabbitMQ 4 root (as scripts/rabbitmq4-node.sh puts them). */
const ROOT_NODES_DIR = '/var/lib/orbit-nodes';

/**
 * Ports handed out here: below Linux's ephemeral range (32768–60999, where the OS picks the
 * local port of every outgoing connection). A node killed and restarted binds its ports again:
 * an ephemeral port could meanwhile be the source port of any client's connection, and the
 * restart then fails to listen ("rabbit_is_not_running" from `await_startup`, seen once in CI).
 */
const PORT_RANGE = { from: 20_000, to: 32_000 } as const;
/** Handed out by this process already (another node may not have bound its port yet). */
const handedOut = new Set<number>();

/** A free TCP port on 127.0.0.1 outside the ephemeral range (bound, then released). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from));
    if (handedOut.has(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${PORT_RANGE.from}–${PORT_RANGE.to}`);
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

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
 *
 * A RabbitMQ 4.0 node (`{ rabbitmq: 4 }`, or every node when ORBIT_TEST_RABBITMQ=4) runs
 * from the root scripts/rabbitmq4-root.sh builds, as scripts/rabbitmq4-node.sh runs one:
 * `chroot <root> env RABBITMQ_…=… /usr/sbin/rabbitmq-server`, its dirs in
 * `<root>/var/lib/orbit-nodes/<name>` owned by the root's own `rabbitmq` user (another uid
 * than the host's), its CLI `chroot <root> /usr/sbin/rabbitmqctl -n <node>` (the root's
 * cookie). Its beam process is an ordinary host process: pid, kill and /proc work the same.
 */
export interface PrivateBrokerOptions {
  /**
   * Extra `rabbitmq.conf` lines (e.g. a TLS listener). A function gets the node's base dir
   * (a host path: write files there) and AMQP port first, for settings that name them. For
   * a 4.0 node, host paths under the root in these lines are rewritten to the paths the
   * node sees (`<root>/var/lib/…` → `/var/lib/…`); `nodeDir` is the base dir as the node sees it.
   */
  readonly extraConfig?:
    | readonly string[]
    | ((node: { baseDir: string; nodeDir: string; port: number }) => readonly string[] | Promise<readonly string[]>);
  /**
   * 3: the machine's own RabbitMQ (3.10); 4: RabbitMQ 4.0 from the root (start() fails
   * with how to build it when it is missing). @defaultValue ORBIT_TEST_RABBITMQ, else 3
   */
  readonly rabbitmq?: 3 | 4;
  /**
   * The node's file-handle limit (`ulimit -n` in its env file, up to the hard limit): a 3.10
   * node otherwise keeps the 1,024 that Debian's `su` wrapper sets (RabbitMQ reports 927).
   * @defaultValue the wrapper's
   */
  readonly fileHandles?: number;
  /** Plugins to enable (`enabled_plugins`), e.g. to boot a config that sets their keys. @defaultValue none */
  readonly plugins?: readonly string[];
  /** An `advanced.config` (Erlang terms) to copy into the node's dir and boot with. @defaultValue none */
  readonly advancedConfigFile?: string;
}

export class PrivateBroker {
  constructor(private readonly options: PrivateBrokerOptions = {}) {
    this.rabbitmq = options.rabbitmq ?? defaultPrivateRabbitmq();
  }

  /** The RabbitMQ major version this node runs: 3 (the machine's) or 4 (the root's). */
  readonly rabbitmq: 3 | 4;
  /** The RabbitMQ 4 root a 4.0 node runs in (set by start()); undefined for a 3.10 node. */
  root: string | undefined;
  readonly shortName = `${NODE_PREFIX}${randomBytes(4).toString('hex')}`;
  readonly nodename = `${this.shortName}@localhost`;
  port = 0;
  distPort = 0;
  /**
   * Dir holding mnesia/, log/, rabbitmq.conf, enabled_plugins and env.conf, as a host path:
   * a temp dir for a 3.10 node, `<root>/var/lib/orbit-nodes/<name>` for a 4.0 node.
   */
  baseDir: string | undefined;
  /** Between `freeze` and `thaw`. */
  private frozen = false;
  /** OS pid of the node's beam process (from its pid file). */
  pid: number | undefined;
  /** How long `start()` took, ms. */
  startMs = 0;
  private stopped = false;
  /** Kills the node and removes its dir should this process die without stop(). */
  private watchdog: ChildProcess | undefined;
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

  /** The base dir as the node sees it: baseDir, or for a 4.0 node its path inside the root. */
  get nodeDir(): string {
    this.requireBase();
    return this.root === undefined ? this.baseDir! : join(ROOT_NODES_DIR, this.shortName);
  }

  /** The exact environment given to `rabbitmq-server` (for the record and for debugging); paths as the node sees them. */
  get env(): Record<string, string> {
    const base = this.nodeDir;
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
      // An absent file is not read (RabbitMQ only loads advanced.config when it exists).
      RABBITMQ_ADVANCED_CONFIG_FILE: join(base, 'advanced.config'),
      // Keep Erlang distribution on loopback, as the shared node's env file does.
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      ...(this.root === undefined
        ? {}
        : {
            // 4.0 writes the pid file where 3.10 does by default (the mnesia base), but say so.
            RABBITMQ_PID_FILE: join(base, 'mnesia', `${this.nodename}.pid`),
            ERL_EPMD_ADDRESS: '127.0.0.1',
          }),
    };
  }

  /** Starts the node and waits until it accepts AMQP connections. */
  async start(timeoutMs = 60_000): Promise<this> {
    const began = Date.now();
    this.assertPrivate();
    if (this.rabbitmq === 4) {
      this.root = requireRabbitmq4Root();
      await ensureProcMounted(this.root);
    }
    this.port = await freePort();
    do this.distPort = await freePort();
    while (this.distPort === this.port);
    if (this.root === undefined) {
      this.baseDir = await fs.mkdtemp(join(tmpdir(), 'orbit-rmq-'));
    } else {
      this.baseDir = join(this.root, ROOT_NODES_DIR, this.shortName);
      await fs.mkdir(this.baseDir, { recursive: true });
    }
    const base = this.baseDir;
    await fs.mkdir(join(base, 'mnesia'));
    await fs.mkdir(join(base, 'log'));
    let extra = typeof this.options.extraConfig === 'function'
      ? await this.options.extraConfig({ baseDir: base, nodeDir: this.nodeDir, port: this.port })
      : this.options.extraConfig ?? [];
    if (this.root !== undefined) {
      // Host paths inside the root, as the chrooted node sees them.
      const prefix = `${this.root}/`;
      extra = extra.map((line) => line.split(prefix).join('/'));
    }
    await fs.writeFile(
      join(base, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = 127.0.0.1:${this.port}`,
        'loopback_users = none',
        // As scripts/rabbitmq4-node.sh: 4.x deprecates the management metrics collector.
        ...(this.root === undefined ? [] : ['management_agent.disable_metrics_collector = true']),
        ...extra,
        '',
      ].join('\n'),
    );
    await fs.writeFile(join(base, 'enabled_plugins'), `[${(this.options.plugins ?? []).join(',')}].\n`);
    if (this.options.advancedConfigFile) await fs.copyFile(this.options.advancedConfigFile, join(base, 'advanced.config'));
    // Sourced by rabbitmq-server's shell after the wrapper's su, so a ulimit here holds for the beam.
    await fs.writeFile(join(base, 'env.conf'), this.options.fileHandles ? `ulimit -n ${this.options.fileHandles}\n` : '');
    // The node runs as `rabbitmq` (the Debian wrapper su's to it): it must own its dirs. In
    // the root that is the root's rabbitmq user, whose uid only the root's passwd knows.
    if (this.root === undefined) await run('chown', ['-R', 'rabbitmq:rabbitmq', base]);
    else await run('chroot', [this.root, 'chown', '-R', 'rabbitmq:rabbitmq', this.nodeDir], { env: ctlEnv() });
    await fs.chmod(base, 0o755);
    process.once('exit', this.onExit);
    this.watchdog = watchNodes([{ pidFile: this.pidFile, nodename: this.nodename }], base);
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
    await fs.rm(this.pidFile, { force: true });
    await this.boot(began, timeoutMs);
    return Date.now() - began;
  }

  /**
   * `rabbitmq-server -detached` (3.10), or `chroot <root> env … rabbitmq-server` in the
   * background (4.0, console output in log/console.out), then waits for the pid file, the
   * AMQP port and the app.
   */
  private async boot(began: number, timeoutMs: number): Promise<void> {
    const base = this.requireBase();
    if (this.root === undefined) {
      await run('rabbitmq-server', ['-detached'], { env: { ...process.env, ...this.env }, timeout: timeoutMs });
    } else {
      const out = openSync(join(base, 'log', 'console.out'), 'a');
      try {
        const vars = Object.entries(this.env).map(([k, v]) => `${k}=${v}`);
        const child = spawn('chroot', [this.root, 'env', ...vars, '/usr/sbin/rabbitmq-server'], {
          env: ctlEnv(),
          detached: true,
          stdio: ['ignore', out, out],
        });
        child.on('error', () => undefined);
        child.unref();
      } finally {
        closeSync(out);
      }
    }
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

  /** Runs `rabbitmqctl -n <this node> …args` (the root's rabbitmqctl for a 4.0 node); resolves with stdout. */
  async ctl(...args: string[]): Promise<string> {
    this.assertPrivate();
    return ctlAt({ node: this.nodename, root: this.root }, args, { timeoutMs: 90_000, maxBuffer: 16 * 1024 * 1024 });
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
   * SIGSTOP of the node's beam process: the node stops answering without closing a socket (a
   * hung or partitioned broker). `thaw` lets it go on; `stop` thaws first.
   */
  freeze(): void {
    this.signal('SIGSTOP');
    this.frozen = true;
  }

  thaw(): void {
    this.signal('SIGCONT');
    this.frozen = false;
  }

  private signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    const pid = this.pid;
    if (!pid || !this.ownsPid(pid)) throw new Error(`node ${this.nodename} is not running`);
    process.kill(pid, signal);
  }

  /**
   * Stops the node and removes its dirs. Safe in `afterAll` whatever happened before: never
   * started, half started, already stopped or killed. Never addresses any other node.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('exit', this.onExit);
    if (this.frozen) {
      try {
        this.thaw();
      } catch {
        // gone already
      }
    }
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
    this.watchdog?.kill();
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

  /** The node's pid file, as a host path. */
  private get pidFile(): string {
    return join(this.requireBase(), 'mnesia', `${this.nodename}.pid`);
  }

  private readPid(): number | undefined {
    if (!this.baseDir) return undefined;
    try {
      const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
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


/** The root's /proc must be mounted for its RabbitMQ (as scripts/rabbitmq4-node.sh does). */
async function ensureProcMounted(root: string): Promise<void> {
  if (existsSync(join(root, 'proc', 'self'))) return;
  await run('mount', ['-t', 'proc', 'proc', join(root, 'proc')]).catch((err: Error) => {
    // Another worker may have mounted it meanwhile.
    if (!existsSync(join(root, 'proc', 'self'))) throw new Error(`could not mount ${join(root, 'proc')}: ${err.message}`);
  });
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

/**
 * A private node for the tests of one file: started in `beforeAll`, stopped in `afterAll`.
 * Returns a getter for it (defined once `beforeAll` has run).
 */
export function privateBrokerForFile(options?: PrivateBrokerOptions): () => PrivateBroker {
  let broker: PrivateBroker | undefined;
  beforeAll(async () => {
    broker = await startPrivateBroker(90_000, options);
  }, 120_000);
  afterAll(async () => {
    await broker?.stop();
  }, 60_000);
  return () => {
    if (!broker) throw new Error('the private node is not started (use it inside a test)');
    return broker;
  };
}
