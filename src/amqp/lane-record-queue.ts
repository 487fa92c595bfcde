import type { Channel, ChannelModel, GetMessage } from 'amqplib';
import { decodeEntry, encodeEntry, planRecordUpdate, type LaneRecordEntry } from '../topology/lane-record';
import { names } from '../naming/names';
import { errnoCode } from '../errors';

/**
 * The lane record on the broker (`topology/lane-record.ts`): the classic queue
 * `<ns>.lane-record`, one persistent message per lane queue the namespace has had.
 *
 * Read without consuming: every message is fetched unacked (basic.get) and handed back by
 * closing the channel, which on a classic queue puts each back where it was, with nothing
 * counted. Always classic, whatever `delay.queueType` says: a quorum queue counts every
 * hand-back as a delivery (RabbitMQ 4 drops a message past its delivery limit), and a stream
 * cannot forget an entry and costs a log of segment files per namespace for a handful of
 * names. The record is not worth replicating either: lost with its node, it only forgets
 * the lanes removed before, and the next `start` records the configured ones again.
 *
 * Two processes reading at once each see the messages the other does not hold at that
 * moment: a daemon may then miss a removed lane until its next start, and may record a lane
 * again, which the next update removes as a duplicate. Nothing else depends on it.
 */

/** Declared without `x-queue-mode` or a version: the same arguments on every broker, so no upgrade ever finds it differing. */
export const LANE_RECORD_ARGUMENTS = { 'x-queue-type': 'classic' } as const;

/** Fetches up to `count` messages unacked; they return when the channel closes (or are acked). */
async function fetchAll(ch: Channel, queue: string, count: number): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  for (let i = 0; i < count; i++) {
    const msg = await ch.get(queue, { noAck: false });
    if (!msg) break;
    out.push(msg);
  }
  return out;
}

async function openChannel(model: ChannelModel): Promise<Channel> {
  const ch = await model.createChannel();
  // A passive declare of a missing queue closes the channel; the rejected call reports it.
  ch.on('error', () => undefined);
  return ch;
}

/**
 * The recorded lane queues (each once); null when the namespace has no record. Declares
 * nothing (for `orbit stats`, which must leave the broker as it found it).
 */
export async function readLaneRecord(model: ChannelModel, namespace: string): Promise<LaneRecordEntry[] | null> {
  const queue = names(namespace).laneRecord;
  const ch = await openChannel(model);
  try {
    let count: number;
    try {
      count = (await ch.checkQueue(queue)).messageCount;
    } catch (err) {
      if (errnoCode(err) === 404) return null;
      throw err;
    }
    const messages = await fetchAll(ch, queue, count);
    return [...planRecordUpdate(messages.map((m) => decodeEntry(m.content, namespace)), []).record];
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/**
 * Records every `wanted` queue not yet recorded and forgets those in `drop` (and duplicates);
 * declares the record queue when missing. Resolves with the record as updated, once the
 * broker confirmed the additions.
 */
export async function updateLaneRecord(
  model: ChannelModel,
  namespace: string,
  wanted: readonly LaneRecordEntry[],
  drop: ReadonlySet<string> = new Set(),
): Promise<LaneRecordEntry[]> {
  const queue = names(namespace).laneRecord;
  const ch = await model.createConfirmChannel();
  ch.on('error', () => undefined);
  try {
    const { messageCount } = await ch.assertQueue(queue, { durable: true, arguments: LANE_RECORD_ARGUMENTS });
    const messages = await fetchAll(ch, queue, messageCount);
    const plan = planRecordUpdate(
      messages.map((m) => decodeEntry(m.content, namespace)),
      wanted,
      drop,
    );
    plan.keep.forEach((keep, i) => {
      if (!keep) ch.ack(messages[i]!);
    });
    for (const entry of plan.add) {
      ch.sendToQueue(queue, encodeEntry(entry), { persistent: true, messageId: entry.queue, contentType: 'application/json' });
    }
    await ch.waitForConfirms();
    return [...plan.record];
  } finally {
    // Hands back the messages kept, in their places.
    await ch.close().catch(() => undefined);
  }
}
