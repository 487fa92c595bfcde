import type { TopologyConfig } from '../config/types';

/**
 * Whether a broker node shows the symptom of a quorum WAL left at RabbitMQ's default size,
 * from the node's memory breakdown (`GET /api/nodes/<node>/memory`, read by
 * `amqp/read-broker-nodes.ts`). Pure.
 *
 * Every quorum queue of a node writes to one write-ahead log, and the log's in-memory tables
 * keep every entry written (its body as an off-heap binary, its index in ETS) until the log
 * rolls over at `raft.wal_max_size_bytes`, 512 MB by default, whether or not the queue still
 * holds the message. On a stock node that is a fixed cost of up to ~0.5 GB that looks like
 * growth with the backlog until it is reached; with 64 MB (what docker/rabbitmq/rabbitmq.conf
 * sets) a node's `binary` + `quorum_ets` stayed at 55–100 MB from 1 M to 10 M resident, on
 * 3.10 and 4.0 (docs/BENCHMARKS.md, "The quorum WAL and broker memory"). A client cannot read
 * the setting (neither AMQP nor the management API report it), only the symptom.
 */

/** `binary` + `quorum_ets` above this on a node whose quorum queues orbit uses: the WAL is likely larger than 64 MB. */
export const WAL_MEMORY_WARN_BYTES = 256 * 1024 * 1024;

/** The WAL size orbit recommends (docker/rabbitmq/rabbitmq.conf). */
export const RECOMMENDED_WAL_BYTES = 64 * 1024 * 1024;

/** The parts of one node's memory breakdown the check reads, bytes. */
export interface NodeMemory {
  readonly name: string;
  /** `binary`: off-heap binaries (the WAL tables' bodies among them). */
  readonly binaryBytes: number;
  /** `quorum_ets`: the quorum WAL's and queues' ETS tables. */
  readonly quorumEtsBytes: number;
}

/** A node that shows the symptom; `path` names the setting that puts orbit's messages there. */
export interface MemoryWarning {
  readonly path: string;
  readonly node: string;
  readonly message: string;
}

/** The setting that makes orbit use quorum queues (the delay queues first: they hold the backlog); undefined when none does. */
export function quorumSetting(config: TopologyConfig): string | undefined {
  if (config.delay.queueType === 'quorum') return 'delay.queueType';
  if (config.lanes.some((l) => l.queueType === 'quorum')) return 'lanes[].queueType';
  if (config.deadLetters.queueType === 'quorum') return 'deadLetters.queueType';
  return undefined;
}

const mb = (bytes: number): string => String(Math.round(bytes / 1e6));

/** A warning for each node holding more than WAL_MEMORY_WARN_BYTES in binaries and quorum tables; none when orbit uses no quorum queue. */
export function walMemoryWarnings(nodes: readonly NodeMemory[], config: TopologyConfig): MemoryWarning[] {
  const path = quorumSetting(config);
  if (path === undefined) return [];
  return nodes
    .filter((n) => n.binaryBytes + n.quorumEtsBytes > WAL_MEMORY_WARN_BYTES)
    .map((n) => ({
      path,
      node: n.name,
      message:
        `RabbitMQ node ${n.name} holds ${mb(n.binaryBytes + n.quorumEtsBytes)} MB in binaries and quorum tables ` +
        `(memory_breakdown: binary ${mb(n.binaryBytes)} MB, quorum_ets ${mb(n.quorumEtsBytes)} MB). With quorum queues this is ` +
        "usually the quorum WAL's in-memory tables, which keep every entry until the WAL rolls over at raft.wal_max_size_bytes " +
        '(512 MB by default): a fixed cost of up to about that much per node, whatever the backlog. ' +
        `Set raft.wal_max_size_bytes = ${RECOMMENDED_WAL_BYTES} in rabbitmq.conf (README, first page; docker/rabbitmq/rabbitmq.conf sets it); ` +
        'orbit cannot read the setting, only this symptom',
    }));
}
