/**
 * A 3-node RabbitMQ cluster for tests, run by `scripts/cluster.sh` (the same script a human
 * uses) with its own node names, free ports and a temp state dir — never the shared
 * rabbit@localhost. Start takes ~25–40 s on two cores (3.10), ~12 s (4.0).
 *
 * RabbitMQ 3.10 (the machine's) unless `{ rabbitmq: 4 }` or ORBIT_TEST_RABBITMQ=4: then the
 * nodes run from the RabbitMQ 4 root (cluster.sh's ORBIT_CLUSTER_RABBITMQ=4), their state
 * dir inside it (`<root>/var/lib/orbit-nodes/<name>`), and every CLI call is the root's.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './private-broker';
import { ctlAt, ctlEnv, defaultPrivateRabbitmq, requireRabbitmq4Root, watchNodes } from './rabbitmq';

const run = promisify(execFile);
export const CLUSTER_SCRIPT = resolve(__dirname, '..', '..', 'scripts', 'cluster.sh');

export interface ScriptClusterOptions {
  /** @defaultValue ORBIT_TEST_RABBITMQ, else 3 */
  readonly rabbitmq?: 3 | 4;
  /** Run the management plugin on each node (its HTTP API: `managementUrl`). @defaultValue false */
  readonly management?: boolean;
}

export class ScriptCluster {
  /** Node name prefix: nodes are `<name>-1@localhost` … `<name>-3@localhost`. */
  readonly name = `orbit-test-c${randomBytes(4).toString('hex')}`;
  /** 3 (the machine's RabbitMQ) or 4 (the root's). */
  readonly rabbitmq: 3 | 4;
  /** The RabbitMQ 4 root the nodes run in; undefined for 3.10. */
  readonly root: string | undefined;
  /** Holds cluster.sh's state dir (`state/`), as a host path. */
  readonly dir: string;
  private readonly management: boolean;
  constructor(options: ScriptClusterOptions = {}) {
    this.rabbitmq = options.rabbitmq ?? defaultPrivateRabbitmq();
    this.management = options.management ?? false;
    if (this.rabbitmq === 4) {
      this.root = requireRabbitmq4Root();
      this.dir = join(this.root, 'var', 'lib', 'orbit-nodes', this.name);
      mkdirSync(this.dir, { recursive: true });
    } else {
      this.root = undefined;
      this.dir = mkdtempSync(join(tmpdir(), 'orbit-cluster-'));
    }
    // The nodes run as user rabbitmq: they must be able to reach their dirs below this one.
    chmodSync(this.dir, 0o755);
  }

  ports: number[] = [];
  distPorts: number[] = [];
  /** The management plugin's ports, in node order (none unless started with `management`). */
  managementPorts: number[] = [];
  /** How long `start()` took, ms. */
  startMs = 0;
  private stopped = false;
  /** Kills the nodes and removes the dir should this process die without stop(). */
  private watchdog: ChildProcess | undefined;
  private readonly onExit = () => this.killAllSync();

  node(i: number): string {
    return `${this.name}-${i}@localhost`;
  }

  /** Node i's management API (1-based), with the guest credentials. */
  managementUrl(i: number): string {
    const port = this.managementPorts[i - 1];
    if (port === undefined) throw new Error('the cluster was started without the management plugin');
    return `http://guest:guest@127.0.0.1:${port}/`;
  }

  /** One AMQP URL per node, in node order. */
  get urls(): string[] {
    return this.ports.map((p) => `amqp://guest:guest@127.0.0.1:${p}`);
  }

  private get env(): NodeJS.ProcessEnv {
    return {
      ...ctlEnv(),
      ORBIT_CLUSTER_RABBITMQ: String(this.rabbitmq),
      ...(this.root === undefined ? {} : { ORBIT_RABBITMQ4_ROOT: this.root }),
      ORBIT_CLUSTER_DIR: join(this.dir, 'state'),
      ORBIT_CLUSTER_NAME: this.name,
      ORBIT_CLUSTER_PORTS: this.ports.join(' '),
      ORBIT_CLUSTER_DIST_PORTS: this.distPorts.join(' '),
      ORBIT_CLUSTER_MANAGEMENT_PORTS: this.managementPorts.join(' '),
    };
  }

  /** Runs `scripts/cluster.sh <args>`; resolves with stdout. */
  async script(...args: string[]): Promise<string> {
    const { stdout } = await run('bash', [CLUSTER_SCRIPT, ...args], { env: this.env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  }

  async start(): Promise<this> {
    const began = Date.now();
    const ports = new Set<number>();
    const needed = this.management ? 9 : 6;
    while (ports.size < needed) ports.add(await freePort());
    const all = [...ports];
    this.ports = all.slice(0, 3);
    this.distPorts = all.slice(3, 6);
    this.managementPorts = all.slice(6);
    process.once('exit', this.onExit);
    this.watchdog = watchNodes([1, 2, 3].map((i) => ({ pidFile: this.pidFile(i), nodename: this.node(i) })), this.dir);
    await this.script('start');
    this.startMs = Date.now() - began;
    return this;
  }

  /** `rabbitmqctl -n <node i> …args`. */
  async ctl(i: number, ...args: string[]): Promise<string> {
    return ctlAt({ node: this.node(i), root: this.root }, ['-q', ...args], { timeoutMs: 60_000, maxBuffer: 16 * 1024 * 1024 });
  }

  /** `rabbitmq-queues -n <node i> …args` (e.g. `rebalance quorum`). */
  async queues(i: number, ...args: string[]): Promise<string> {
    return ctlAt({ node: this.node(i), root: this.root }, ['-q', ...args], { tool: 'rabbitmq-queues', timeoutMs: 120_000, maxBuffer: 16 * 1024 * 1024 });
  }

  /** The node (1–3) a client connection named `name` is on, asked of a live node `via`, or undefined. */
  async nodeOfConnection(name: string, via: number): Promise<number | undefined> {
    const out = await this.ctl(via, 'list_connections', 'pid', 'client_properties', '--no-table-headers');
    for (const line of out.split('\n')) {
      if (!line.includes(`"${name}"`) && !line.includes(`<<"${name}">>`)) continue;
      const pidNode = line.match(/^<([^.>]+@[^.>]+)\./)?.[1];
      for (let i = 1; i <= 3; i++) if (pidNode === this.node(i)) return i;
    }
    return undefined;
  }

  /** The nodes (1–3) that are not running, each with why (cluster.sh's `down`: its pid file, the end of its log). */
  async downNodes(): Promise<Map<number, string>> {
    const down = new Map<number, string>();
    for (const line of (await this.script('down')).split('\n')) {
      const tab = line.indexOf('\t');
      if (tab > 0) down.set(Number(line.slice(0, tab)), line.slice(tab + 1));
    }
    return down;
  }

  async kill(i: number): Promise<void> {
    await this.script('kill', String(i));
  }

  async restart(i: number): Promise<void> {
    await this.script('restart', String(i));
  }

  /** Stops every node and removes the state; safe whatever state the cluster is in. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('exit', this.onExit);
    if (this.ports.length > 0) await this.script('stop').catch(() => this.killAllSync());
    this.killAllSync();
    rmSync(this.dir, { recursive: true, force: true });
    this.watchdog?.kill();
  }

  /** Node i's pid file, as a host path (cluster.sh's layout). */
  private pidFile(i: number): string {
    return join(this.dir, 'state', `n${i}`, 'mnesia', `${this.node(i)}.pid`);
  }

  /** Last resort (process exit): SIGKILL each node still running as this cluster's node. */
  private killAllSync(): void {
    for (let i = 1; i <= 3; i++) {
      try {
        const file = this.pidFile(i);
        const pid = Number(readFileSync(file, 'utf8').trim());
        const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
        if (environ.includes(`RABBITMQ_NODENAME=${this.node(i)}`)) process.kill(pid, 'SIGKILL');
      } catch {
        // not running
      }
    }
  }
}

/** Starts a cluster; on failure stops whatever was started and rethrows. */
export async function startCluster(options?: ScriptClusterOptions): Promise<ScriptCluster> {
  const cluster = new ScriptCluster(options);
  try {
    return await cluster.start();
  } catch (err) {
    await cluster.stop().catch(() => undefined);
    throw err;
  }
}
