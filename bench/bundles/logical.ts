import amqplib from 'amqplib';
import { BUNDLE_HEADER, decodeBundle } from '../../src/message/bundle';
import { readState } from '../../src/message/headers';

/** What a set of queues held, counted in logical messages (a bundle counts as its entries). */
export interface LogicalCount {
  /** AMQP messages (bundles and plain messages). */
  readonly amqp: number;
  /** Logical messages: the entries of every bundle plus every plain message. */
  readonly logical: number;
  /** Bytes of AMQP message bodies (what the broker stores, headers and properties aside). */
  readonly bodyBytes: number;
  /** Distinct message ids, when asked for (`trackIds`). */
  readonly distinctIds: number | undefined;
  /** Logical messages whose `runs` was not the expected value (when one is given). */
  readonly wrongRuns: number;
  /** The largest bundle seen, in logical messages. */
  readonly largest: number;
}

export interface DrainOptions {
  /** Count distinct ids (costs memory: keep it to a few hundred thousand). */
  readonly trackIds?: boolean;
  /** Every logical message must have run this many times. */
  readonly expectRuns?: number;
}

/**
 * Takes every message out of `queues` and counts what they held: the broker counts AMQP
 * messages only, so a bundled lane's logical totals can only be checked by decoding the
 * bundles (orbit's own decoder). Destructive: call it last, just before deleting the
 * namespace. Nothing must publish to the queues meanwhile; messages in delay levels must not
 * be about to expire (the benchmarks schedule them an hour or more ahead).
 */
export async function drainLogical(amqpUrl: string, queues: readonly string[], options: DrainOptions = {}): Promise<LogicalCount> {
  const conn = await amqplib.connect(amqpUrl);
  const ids = options.trackIds ? new Set<string>() : undefined;
  let amqp = 0;
  let logical = 0;
  let bodyBytes = 0;
  let wrongRuns = 0;
  let largest = 0;
  const see = (id: string, runs: number) => {
    ids?.add(id);
    if (options.expectRuns !== undefined && runs !== options.expectRuns) wrongRuns++;
  };
  try {
    for (const queue of queues) {
      const ch = await conn.createChannel();
      const depth = (await ch.checkQueue(queue)).messageCount;
      if (depth === 0) {
        await ch.close();
        continue;
      }
      await ch.prefetch(500);
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        ch.on('error', reject);
        let tag: string | undefined;
        ch.consume(
          queue,
          (msg) => {
            if (msg === null) return reject(new Error(`consumer of ${queue} cancelled by the broker`));
            amqp++;
            bodyBytes += msg.content.length;
            const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
            const version = headers[BUNDLE_HEADER];
            if (version !== undefined) {
              const entries = decodeBundle(msg.content, version);
              logical += entries.length;
              largest = Math.max(largest, entries.length);
              for (const e of entries) see(e.id, e.runs);
            } else {
              logical++;
              largest = Math.max(largest, 1);
              see(String(msg.properties.messageId), readState(headers, 0).runs);
            }
            // Ack in batches: a multiple ack every 250 and the last one.
            if (++received % 250 === 0 || received === depth) ch.ack(msg, true);
            if (received === depth) {
              if (tag) void ch.cancel(tag).then(() => resolve(), reject);
              else resolve();
            }
          },
          { noAck: false },
        ).then((ok) => (tag = ok.consumerTag), reject);
      });
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
  return { amqp, logical, bodyBytes, distinctIds: ids?.size, wrongRuns, largest };
}
