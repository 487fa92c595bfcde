import { dirname, join } from 'node:path';
import type { ConsumeMessage } from 'amqplib';

/**
 * A counting wrapper around amqplib, for benchmarks that run orbit in their own process:
 * every `basic.publish` any channel of this process sends, and every delivery any consumer of
 * this process receives, with the number of times the broker dead-lettered that message since
 * it was last published (the sum of the `count` fields of its `x-death` header, which the
 * broker writes on every TTL expiry and orbit strips on every republish). So a delivery's
 * `x-death` total is the number of TTL queues it passed on its way to the consumer: its delay
 * hops, counted by the broker, whatever the delay layout (binary levels or a ladder).
 *
 * It patches amqplib's channel prototypes (an amqplib internal, looked up by file path since
 * the package's `exports` hide it), so it sees orbit's own channels without touching src/. The
 * cost per message is a counter increment and, per delivery, a look at one header.
 */
export interface AmqpCounts {
  /** `basic.publish` frames sent by this process (confirm channels included). */
  published: number;
  /** Deliveries to consumers of this process, by queue. */
  readonly deliveries: Map<string, number>;
  /** Dead-letterings (TTL expiries) the delivered messages went through, by consuming queue. */
  readonly deadLetterings: Map<string, number>;
}

const counts: AmqpCounts = { published: 0, deliveries: new Map(), deadLetterings: new Map() };
let installed = false;

interface ChannelProto {
  publish(this: unknown, exchange: string, routingKey: string, content: Buffer, options?: unknown): boolean;
  consume(this: unknown, queue: string, callback: (msg: ConsumeMessage | null) => void, options?: unknown): Promise<unknown>;
}

/** Installs the wrapper (once per process) and returns the live counters. */
export function installAmqpCounters(): AmqpCounts {
  if (installed) return counts;
  const model = require(join(dirname(require.resolve('amqplib')), 'lib', 'channel_model.js')) as { Channel?: { prototype: ChannelProto } };
  const proto = model.Channel?.prototype;
  if (!proto || typeof proto.publish !== 'function' || typeof proto.consume !== 'function') {
    throw new Error('amqplib internals moved: cannot install the counting wrapper (bench/lib/amqp-counters.ts)');
  }
  const publish = proto.publish;
  const consume = proto.consume;
  // ConfirmChannel.publish calls Channel.publish (super), so each frame is counted once.
  proto.publish = function countedPublish(exchange, routingKey, content, options) {
    counts.published++;
    return publish.call(this, exchange, routingKey, content, options);
  };
  proto.consume = function countedConsume(queue, callback, options) {
    const counted = (msg: ConsumeMessage | null): void => {
      if (msg !== null) {
        counts.deliveries.set(queue, (counts.deliveries.get(queue) ?? 0) + 1);
        const hops = deadLetterings(msg);
        if (hops > 0) counts.deadLetterings.set(queue, (counts.deadLetterings.get(queue) ?? 0) + hops);
      }
      callback(msg);
    };
    return consume.call(this, queue, counted, options);
  };
  installed = true;
  return counts;
}

/** Total `count` over the message's `x-death` entries: how many times it was dead-lettered since published. */
export function deadLetterings(msg: ConsumeMessage): number {
  const deaths = (msg.properties.headers as Record<string, unknown> | undefined)?.['x-death'];
  if (!Array.isArray(deaths)) return 0;
  let total = 0;
  for (const d of deaths) {
    const c = (d as { count?: unknown } | null)?.count;
    total += typeof c === 'number' ? c : Number(c) || 1;
  }
  return total;
}

/** A copy of the counters at one moment, for differences over a window. */
export interface AmqpSnapshot {
  readonly published: number;
  readonly deliveries: number;
  readonly deadLetterings: number;
}

/** The counters now, for the deliveries of the queues `of` picks (every queue when undefined). */
export function snapshotCounts(of?: (queue: string) => boolean): AmqpSnapshot {
  const pick = (m: Map<string, number>) => {
    let total = 0;
    for (const [queue, n] of m) if (of === undefined || of(queue)) total += n;
    return total;
  };
  return { published: counts.published, deliveries: pick(counts.deliveries), deadLetterings: pick(counts.deadLetterings) };
}
