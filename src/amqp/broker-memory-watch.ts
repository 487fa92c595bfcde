import type { AmqpConfig, TopologyConfig } from '../config/types';
import { errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import { walMemoryWarnings, type MemoryWarning } from '../topology/broker-memory';
import { readNodesMemory } from './read-broker-nodes';

/**
 * How often a daemon looks at its broker nodes' memory. The quorum WAL's tables grow with
 * what is written, not with the backlog, so a node that looks fine at start may show the
 * symptom an hour later; a breakdown costs the broker a walk over its processes, so not often.
 */
export const WAL_CHECK_MS = 5 * 60_000;

/**
 * Watches the broker's nodes for a quorum WAL left at RabbitMQ's default size
 * (`topology/broker-memory.ts`): reads each node's memory breakdown from the management API
 * at start and every `intervalMs`, and warns once per node while it shows the symptom (again
 * should it recover and come back). Never throws: an API that does not answer is noted at
 * debug, as the start-up check already said why the API is missing.
 */
export class BrokerMemoryWatch {
  private timer: NodeJS.Timeout | undefined;
  private readonly warned = new Set<string>();
  private running: Promise<MemoryWarning[]> | undefined;

  constructor(
    private readonly amqp: AmqpConfig,
    private readonly config: TopologyConfig,
    private readonly nodes: readonly string[],
    private readonly log: Logger,
    private readonly intervalMs = WAL_CHECK_MS,
  ) {}

  /** A first look now, then one every `intervalMs`. Idempotent. */
  start(): void {
    if (this.timer) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One look (joins one in flight); resolves with the nodes that show the symptom now. */
  check(): Promise<MemoryWarning[]> {
    this.running ??= this.look().finally(() => (this.running = undefined));
    return this.running;
  }

  private async look(): Promise<MemoryWarning[]> {
    try {
      const result = await readNodesMemory(this.amqp, this.nodes);
      if ('unavailable' in result) {
        this.log.debug({ managementApi: result.unavailable }, 'broker memory not checked: the management API did not answer');
        return [];
      }
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
      this.log.debug({ err: errorMessage(err) }, 'broker memory not checked');
      return [];
    }
  }
}
