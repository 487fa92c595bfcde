import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ctlCommand, ctlEnv, type CtlTarget } from './ctl-command';

const run = promisify(execFile);

/**
 * The node the benchmarks' RabbitMQ CLI calls address: ORBIT_BENCH_RABBITMQ_NODE (else
 * ORBIT_TEST_RABBITMQ_NODE), and ORBIT_BENCH_RABBITMQ4_ROOT (else ORBIT_TEST_RABBITMQ4_ROOT)
 * for a node in the RabbitMQ 4 root. Unset: the CLI's default node, the shared one. A bench
 * against a private node (say, one with more file handles) must name it, or the CLI would
 * read and delete on the shared node instead.
 */
export function benchNode(): CtlTarget {
  const node = (process.env.ORBIT_BENCH_RABBITMQ_NODE ?? process.env.ORBIT_TEST_RABBITMQ_NODE)?.trim() || undefined;
  const root = (process.env.ORBIT_BENCH_RABBITMQ4_ROOT ?? process.env.ORBIT_TEST_RABBITMQ4_ROOT)?.trim() || undefined;
  return { node, root };
}

/** Runs a RabbitMQ CLI tool (`rabbitmqctl` unless `tool` says otherwise) against {@link benchNode}; resolves with stdout. */
export async function benchCtl(args: readonly string[], options: { timeoutMs?: number; maxBuffer?: number; tool?: string } = {}): Promise<string> {
  const [command, argv] = ctlCommand(benchNode(), args, options.tool);
  const { stdout } = await run(command, argv, { env: ctlEnv(), timeout: options.timeoutMs ?? 60_000, maxBuffer: options.maxBuffer ?? 64 * 1024 * 1024 });
  return stdout;
}
