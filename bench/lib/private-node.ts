import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { owe } from './cleanup';
import { ctlEnv } from './ctl-command';

const run = promisify(execFile);

/**
 * A RabbitMQ 3.10 node of the benchmark's own, from this host's `rabbitmq-server` (as the
 * tests' private nodes run: dirs owned by user `rabbitmq`, which the Debian wrappers switch
 * to, so server and CLI share its cookie), for benchmarks that compare broker configurations
 * node-wide: a fresh node's memory is the configuration's, not what other clients left on a
 * shared broker. Own node name, ports and data dir; never the shared `rabbit@localhost`.
 */
export interface PrivateNode {
  /** `name@localhost`: what `ORBIT_BENCH_RABBITMQ_NODE` must name for bench/lib/ctl.ts to read this node. */
  readonly node: string;
  readonly amqpUrl: string;
  stop(): Promise<void>;
}

/** Lines of docker/rabbitmq/rabbitmq.conf that take effect on a bare node: the HTTP plugins' ports are left out, and so are the plugins. */
export async function shippedBrokerConfig(repoRoot: string): Promise<{ lines: string[]; user: string; password: string; advancedConfig: string }> {
  const dir = join(repoRoot, 'docker', 'rabbitmq');
  const lines = (await readFile(join(dir, 'rabbitmq.conf'), 'utf8'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !/^(management|prometheus)\./.test(l));
  const value = (key: string) => lines.find((l) => l.startsWith(`${key} `))?.split('=')[1]?.trim() ?? 'guest';
  return { lines, user: value('default_user'), password: value('default_pass'), advancedConfig: join(dir, 'advanced.config') };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    // Below the ephemeral range, as the tests' nodes: a port the OS hands out to outgoing connections could be taken meanwhile.
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(port)));
  });
}

async function freePortRetrying(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await freePort();
    } catch (err) {
      if (attempt >= 50) throw err;
    }
  }
}

/**
 * Starts a node with `lines` as its whole rabbitmq.conf (plus its listener), and
 * `advancedConfig` when given; its file-handle limit is the hard limit (`ulimit -n`), so the
 * ladder's queues fit. Resolves once it answers; `stop()` stops it and removes its dir.
 */
export async function startPrivateNode(options: { lines?: readonly string[]; user?: string; password?: string; advancedConfig?: string } = {}): Promise<PrivateNode> {
  const name = `orbit-bench-${randomBytes(4).toString('hex')}`;
  const node = `${name}@localhost`;
  const port = await freePortRetrying();
  let dist = await freePortRetrying();
  while (dist === port) dist = await freePortRetrying();
  const base = await mkdtemp(join(tmpdir(), 'orbit-bench-rmq-'));
  await mkdir(join(base, 'mnesia'));
  await mkdir(join(base, 'log'));
  await writeFile(join(base, 'rabbitmq.conf'), ['loopback_users = none', ...(options.lines ?? [])].join('\n') + '\n');
  await writeFile(join(base, 'enabled_plugins'), '[].\n');
  await writeFile(join(base, 'env.conf'), 'ulimit -n $(ulimit -Hn)\n');
  if (options.advancedConfig) await copyFile(options.advancedConfig, join(base, 'advanced.config'));
  await run('chown', ['-R', 'rabbitmq:rabbitmq', base]);
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RABBITMQ_'))),
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(dist),
    RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: join(base, 'log'),
    RABBITMQ_CONFIG_FILE: join(base, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    RABBITMQ_CONF_ENV_FILE: join(base, 'env.conf'),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(base, 'advanced.config'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
  const ctl = (args: string[], timeout = 90_000) => run('rabbitmqctl', ['-n', node, ...args], { timeout, env: ctlEnv() });
  // Owed from here on: an interrupted run (Ctrl-C) stops the node too.
  const stop = owe(async () => {
    await ctl(['stop'], 60_000).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
  });
  try {
    await run('rabbitmq-server', ['-detached'], { env, timeout: 30_000 });
    // -detached returns before the node listens: wait for it (its first boot creates the schema).
    for (let attempt = 0; ; attempt++) {
      try {
        await ctl(['await_startup', '--timeout', '60'], 70_000);
        break;
      } catch (err) {
        if (attempt >= 10) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } catch (err) {
    await stop();
    throw new Error(`private RabbitMQ node ${node} did not start (logs were in ${base}/log): ${err instanceof Error ? err.message : String(err)}`);
  }
  const user = encodeURIComponent(options.user ?? 'guest');
  const password = encodeURIComponent(options.password ?? 'guest');
  return { node, amqpUrl: `amqp://${user}:${password}@127.0.0.1:${port}`, stop };
}
