import type { Channel } from 'amqplib';
import { BrokerError } from '../errors';
import type { Topology } from './build';

/**
 * Declares a topology on the broker in small ordered steps (exchanges, then queues, then
 * bindings: a binding needs both ends). Idempotent, so it runs again on every reconnect.
 * A queue that exists with other arguments (a changed `delay.unit`, say) makes the broker
 * close the channel with PRECONDITION_FAILED; the error then names the queue and the way out.
 */
export async function assertTopology(channel: Channel, topology: Topology): Promise<void> {
  const step = async (what: string, run: () => Promise<unknown>): Promise<void> => {
    try {
      await run();
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      // 406 PRECONDITION_FAILED: the object exists with other arguments.
      const hint = (err as { code?: unknown }).code === 406
        ? ' — the broker refused its arguments: either it exists with different ones (was delay.unit, delay.levels, delay.queueType or a lane maxPriority changed? use a new namespace or delete it) or a value is out of range'
        : '';
      throw new BrokerError(`cannot declare ${what}${hint}: ${detail}`, { cause: err, code: 'TOPOLOGY_FAILED' });
    }
  };
  // Within a stage the declarations are independent, so they are pipelined on the channel.
  await Promise.all(
    topology.exchanges.map((ex) =>
      step(`exchange ${ex.name}`, () =>
        channel.assertExchange(ex.name, ex.type, { durable: true, autoDelete: false, arguments: ex.arguments }),
      ),
    ),
  );
  await Promise.all(
    topology.queues.map((q) =>
      step(`queue ${q.name}`, () => channel.assertQueue(q.name, { durable: true, arguments: q.arguments })),
    ),
  );
  await Promise.all(
    topology.bindings.map((b) =>
      step(`binding ${b.source} → ${b.destination} (${b.pattern || 'all'})`, () =>
        b.kind === 'queue'
          ? channel.bindQueue(b.destination, b.source, b.pattern)
          : channel.bindExchange(b.destination, b.source, b.pattern),
      ),
    ),
  );
}
