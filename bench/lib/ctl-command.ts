/**
 * How to run a RabbitMQ CLI tool against a given node: shared by the benchmarks
 * (./ctl.ts) and the tests (test/helpers/rabbitmq.ts re-exports it). It lives here, not in
 * test/, because the build (tsconfig.build.json: src and bench) and the copies of the repo
 * that `npm start` builds (the Docker image, the README quickstart test) hold no test/.
 */

/** A node to run a RabbitMQ CLI tool against. */
export interface CtlTarget {
  /** Erlang node name (`-n`); undefined: the tool's default node. */
  readonly node?: string;
  /** RabbitMQ 4 root the node runs in: the tool runs chrooted there. */
  readonly root?: string;
}

/**
 * The command line that runs a RabbitMQ CLI tool (`rabbitmqctl`, `rabbitmq-queues`, …)
 * against `target`: `[command, args]`. The only place that knows how.
 */
export function ctlCommand(target: CtlTarget, args: readonly string[], tool = 'rabbitmqctl'): [string, string[]] {
  const nodeArgs = target.node === undefined ? [] : ['-n', target.node];
  if (target.root !== undefined) return ['chroot', [target.root, `/usr/sbin/${tool}`, ...nodeArgs, ...args]];
  return [tool, [...nodeArgs, ...args]];
}

/**
 * The CLI's environment: this one without RABBITMQ_* (a CLI that sees a node's
 * RABBITMQ_DIST_PORT or RABBITMQ_NODENAME would use them).
 */
export function ctlEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RABBITMQ_')) env[k] = v;
  return env;
}
