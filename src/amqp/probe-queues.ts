import type { Channel, ChannelModel } from 'amqplib';
import { errnoCode } from '../errors';
import { UNANSWERED, answeredWithin } from './within';

/** A queue's counts, as a passive declare reports them. */
export interface QueueCounts {
  readonly messageCount: number;
  readonly consumerCount: number;
}

/**
 * Counts of many queues, most of them possibly missing, by passive declares on `parallel`
 * channels of their own (a missing queue closes its channel; the next one opens a new one).
 * Rejects once `timeoutMs` have passed, also while a declare is still unanswered (a queue that
 * does not answer must not hold its caller); that channel is then closed without waiting.
 */
export async function probeQueues(model: ChannelModel, queueNames: readonly string[], timeoutMs: number, parallel = 16): Promise<Map<string, QueueCounts | null>> {
  const counts = new Map<string, QueueCounts | null>();
  const deadline = Date.now() + timeoutMs;
  let next = 0;
  const open = async (): Promise<Channel> => {
    const ch = await model.createChannel();
    ch.on('error', () => undefined);
    return ch;
  };
  const worker = async (): Promise<void> => {
    let ch: Channel | undefined;
    try {
      while (next < queueNames.length) {
        if (Date.now() > deadline) throw new Error(`probing ${queueNames.length} queues took over ${timeoutMs} ms`);
        const name = queueNames[next++]!;
        ch ??= await open();
        let look: Awaited<ReturnType<Channel['checkQueue']>> | typeof UNANSWERED;
        try {
          look = await answeredWithin(ch.checkQueue(name), Math.max(0, deadline - Date.now()));
        } catch (err) {
          if (errnoCode(err) !== 404) throw err;
          counts.set(name, null);
          ch = undefined; // closed by the broker
          continue;
        }
        if (look === UNANSWERED) {
          void ch.close().catch(() => undefined);
          ch = undefined;
          throw new Error(`probing ${queueNames.length} queues took over ${timeoutMs} ms (${name} did not answer)`);
        }
        counts.set(name, { messageCount: look.messageCount, consumerCount: look.consumerCount });
      }
    } finally {
      await ch?.close().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, queueNames.length) }, worker));
  return counts;
}
