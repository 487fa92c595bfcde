import type { ResolvedConfig } from '../../src/config/types';
import { HANDLE_HEADROOM, HANDLES_PER_QUEUE, handlesNeeded, ladderQueuesInSpan } from '../../src/topology/broker-capacity';
import { benchCtl } from './ctl';

/**
 * The ladder benchmarks (`steady`, `fill`) refuse a broker that cannot keep their rungs' files
 * open, before they declare anything. On RabbitMQ 3.10 a node out of file handles does not fail
 * cleanly: its file handle cache stops answering, and with it the message store, new
 * connections, `rabbitmqctl` and even the node's next boot (session 24 wedged the machine's
 * shared broker this way with `steady` at 2 %). The limit is read with `rabbitmq-diagnostics
 * status` on the node bench/lib/ctl.ts addresses, which must be the node `--amqp-url` reaches.
 */

/** One run a benchmark is about to make: its orbit config and the delays it will schedule. */
export interface LadderRun {
  readonly name: string;
  readonly config: ResolvedConfig;
  /** The shortest and longest delay the run schedules (ms). */
  readonly spanMs: readonly [number, number];
}

/** What `rabbitmq-diagnostics status` says of a node's file handles and AMQP listeners. */
export interface NodeHandles {
  readonly node: string;
  /** File handles the node may keep open (`file_descriptors.total_limit`). */
  readonly limit: number;
  readonly used: number;
  readonly amqpPorts: readonly number[];
}

const FIX =
  "run it against a broker with more file handles: a private node whose rabbitmq-env.conf raises 'ulimit -n' " +
  '(docs/BENCHMARKS.md shows how), named with ORBIT_BENCH_AMQP_URL and ORBIT_BENCH_RABBITMQ_NODE, or the RabbitMQ 4 node (scripts/rabbitmq4-node.sh)';

/** The node's handles and AMQP ports from `rabbitmq-diagnostics status --formatter json`; throws on an answer without them. */
export function parseNodeHandles(json: string): NodeHandles {
  const data = JSON.parse(json) as { file_descriptors?: { total_limit?: unknown; total_used?: unknown }; listeners?: unknown };
  const fd = data.file_descriptors;
  if (typeof fd?.total_limit !== 'number') throw new Error('rabbitmq-diagnostics status reported no file_descriptors.total_limit');
  const listeners = Array.isArray(data.listeners) ? (data.listeners as { node?: unknown; protocol?: unknown; port?: unknown }[]) : [];
  const amqp = listeners.filter((l) => l.protocol === 'amqp' || l.protocol === 'amqp/ssl');
  return {
    node: String(listeners[0]?.node ?? 'the node'),
    limit: fd.total_limit,
    used: typeof fd.total_used === 'number' ? fd.total_used : 0,
    amqpPorts: amqp.map((l) => Number(l.port)).filter(Number.isFinite),
  };
}

/** The AMQP port of a URL (5672, 5671 for amqps, when it names none). */
function amqpPort(amqpUrl: string): number {
  const url = new URL(amqpUrl);
  return url.port !== '' ? Number(url.port) : url.protocol === 'amqps:' ? 5671 : 5672;
}

/** The runs that declare a ladder, each with the handles it needs; empty when none does (binary levels only). */
export function ladderNeeds(runs: readonly LadderRun[]): { readonly run: LadderRun; readonly rungs: number; readonly handles: number }[] {
  return runs
    .map((run) => ({ run, rungs: ladderQueuesInSpan(run.config.delay, run.config.lanes, run.spanMs), handles: handlesNeeded(run.config.delay, run.config.lanes, run.spanMs) }))
    .filter((x) => x.rungs > 0);
}

/**
 * Why `node` cannot hold the runs' ladders, or undefined when it can: the first run that needs
 * more handles than the node has, named with the numbers and the way out. Pure.
 */
export function handleShortfall(node: NodeHandles, runs: readonly LadderRun[], amqpUrl: string): string | undefined {
  const port = amqpPort(amqpUrl);
  if (node.amqpPorts.length > 0 && !node.amqpPorts.includes(port)) {
    return (
      `the RabbitMQ CLI reads node ${node.node}, which listens for AMQP on ${node.amqpPorts.join(', ')}, but the benchmark's broker is on port ${port}: ` +
      'set ORBIT_BENCH_RABBITMQ_NODE (and ORBIT_BENCH_RABBITMQ4_ROOT for the RabbitMQ 4 node) to the node behind --amqp-url'
    );
  }
  const worst = ladderNeeds(runs).sort((a, b) => b.handles - a.handles)[0];
  if (worst === undefined || worst.handles <= node.limit) return undefined;
  return (
    `"${worst.run.name}" would use up to ${worst.rungs} ladder queues, each keeping ~${HANDLES_PER_QUEUE} file handles open while it holds messages ` +
    `(${worst.handles} with ${HANDLE_HEADROOM} of headroom), but RabbitMQ node ${node.node} can keep ${node.limit} open (${node.used} in use). ` +
    `Out of handles, a RabbitMQ 3.x node stops answering, for every client and its own CLI, until it is restarted with more: ${FIX}`
  );
}

/**
 * Throws when the broker cannot hold the ladders of `runs` (see {@link handleShortfall}), or
 * when its limit cannot be read; does nothing, and asks nothing of the broker, when no run
 * declares a ladder. `check: false` (`--no-handle-check`) skips it, for a broker this host's
 * RabbitMQ CLI cannot reach.
 */
export async function assertBrokerHoldsLadders(amqpUrl: string, runs: readonly LadderRun[], check = true): Promise<void> {
  if (!check || ladderNeeds(runs).length === 0) return;
  let node: NodeHandles;
  try {
    node = parseNodeHandles(await benchCtl(['status', '--formatter', 'json'], { tool: 'rabbitmq-diagnostics', timeoutMs: 30_000 }));
  } catch (err) {
    throw new Error(
      `could not read the broker's file-handle limit with rabbitmq-diagnostics (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); ` +
        "the ladder's rungs need more handles than a stock node started from a shell has. Name the node (ORBIT_BENCH_RABBITMQ_NODE), " +
        'or pass --no-handle-check for a broker this host cannot reach with the CLI and that you know has the handles',
      { cause: err },
    );
  }
  const why = handleShortfall(node, runs, amqpUrl);
  if (why !== undefined) throw new Error(`refusing to run: ${why}`);
}
