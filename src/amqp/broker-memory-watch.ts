import type { AmqpConfig, TopologyConfig } from '../config/types';
import { errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import { walMemoryWarnings, type MemoryWarning } from '../topology/broker-memory';
import { readBrokerNodes, readNodesMemory, type NodesMemoryResult } from './read-broker-nodes';

/**
 * How often a daemon looks at its broker nodes' memory. The quorum WAL's tables grow with
 * what is written, not with the backlog, so a node that looks fine at start may show the
 * symptom an hour later; a breakdown costs the broker a walk over its processes, so not often.
 */
export const WAL_CHECK_MS = 5 * 60_000;
/** After a look that got no answer (a busy broker computes a breakdown slowly), look again this soon… */
export const WAL_RETRY_MS = 30_000;
/** …this many times in a row, then only every WAL_CHECK_MS (a broker without the plugin never answers). */
export const WAL_RETRIES = 4;
/** How long one request may take: a breakdown walks every process of the node. */
const REQUEST_TIMEOUT_MS = 30_000;

/**
 * Watches the broker's nodes for a quorum WAL left at RabbitMQ's default size
 * (`topology/broker-memory.ts`): reads each node's memory breakdown from the management API
 * at start and every `intervalMs`, and warns once per node while it shows the symptom (again
 * should it recover and come back). A look that gets no answer is tried again sooner, a few
 * times. Never throws: an API that does not answer is noted at debug (the start-up check
 * already said at info why the API is missing).
 */
export class BrokerMemoryWatch {
  private timer: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  private readonly warned = new Set<string>();
  private running: Promise<MemoryWarning[]> | undefined;
  private nodes: readonly string[] | undefined;

  constructor(
    private readonly amqp: AmqpConfig,
    private readonly config: TopologyConfig,
    private readonly log: Logger,
    options: {
      /** The nodes to read; unset: read from the API's node list on the first look. */
      readonly nodes?: readonly string[];
      /** @defaultValue WAL_CHECK_MS */
      readonly intervalMs?: number;
      /** @defaultValue WAL_RETRY_MS */
      readonly retryMs?: number;
      /** Reads the nodes' memory (tests give fixed figures). @defaultValue readNodesMemory */
      readonly read?: (amqp: AmqpConfig, nodes: readonly string[], timeoutMs: number) => Promise<NodesMemoryResult>;
    } = {},
  ) {
    this.nodes = options.nodes;
    this.read = options.read ?? readNodesMemory;
    this.intervalMs = options.intervalMs ?? WAL_CHECK_MS;
    this.retryMs = options.retryMs ?? WAL_RETRY_MS;
  }

  private readonly intervalMs: number;
  private readonly retryMs: number;
  private readonly read: (amqp: AmqpConfig, nodes: readonly string[], timeoutMs: number) => Promise<NodesMemoryResult>;

  /** A first look now, then one every `intervalMs`. Idempotent. */
  start(): void {
    if (this.timer || this.stopped) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retry);
  }

  /** One look (joins one in flight); resolves with the nodes that show the symptom now. */
  check(): Promise<MemoryWarning[]> {
    this.running ??= this.look().finally(() => (this.running = undefined));
    return this.running;
  }

  private async look(): Promise<MemoryWarning[]> {
    try {
      if (this.nodes === undefined) {
        const listed = await readBrokerNodes(this.amqp, REQUEST_TIMEOUT_MS);
        if ('unavailable' in listed) return this.failed(listed.unavailable);
        this.nodes = listed.nodes.map((n) => n.name);
      }
      const result = await this.read(this.amqp, this.nodes, REQUEST_TIMEOUT_MS);
      if ('unavailable' in result) return this.failed(result.unavailable);
      this.failures = 0;
      const warnings = walMemoryWarnings(result.nodes, this.config);
      const now = new Set(warnings.map((w) => w.node));
      for (const w of warnings) {
        if (this.warned.has(w.node)) continue;
        this.warned.add(w.node);
        this.log.warn({ node: w.node, path: w.path, managementApi: result.from }, w.message);
      }
      for (const node of this.warned) if (!now.has(node)) this.warned.delete(node);
      return warnings;
    } catch (err) {
      return this.failed(errorMessage(err));
    }
  }

  private failed(reason: string): MemoryWarning[] {
    this.log.debug({ managementApi: reason }, 'broker memory not checked: the management API did not answer');
    if (!this.stopped && this.timer && ++this.failures <= WAL_RETRIES) {
      clearTimeout(this.retry);
      this.retry = setTimeout(() => void this.check(), this.retryMs);
      this.retry.unref();
    }
    return [];
  }
}
