import type { Message as AmqpMessage } from 'amqplib';
import { AckBatcher } from '../../src/worker/ack-batcher';

/** A delivery as amqplib hands it over; only the tag matters to the batcher. */
function delivery(tag: number): AmqpMessage {
  return { fields: { deliveryTag: tag } } as unknown as AmqpMessage;
}

function recorder() {
  const acks: Array<[number, boolean]> = [];
  const batcher = new AckBatcher({ ack: (m: AmqpMessage, allUpTo?: boolean) => void acks.push([m.fields.deliveryTag, allUpTo === true]) });
  return { acks, batcher };
}

const nextTurn = () => new Promise((r) => setImmediate(r));

describe('AckBatcher', () => {
  test('deliveries settled in one turn at the front of the window go as one multiple ack', async () => {
    const { acks, batcher } = recorder();
    const ds = [1, 2, 3, 4, 5].map(delivery);
    ds.forEach((d) => batcher.received(d));
    for (const d of [ds[2]!, ds[0]!, ds[4]!, ds[1]!, ds[3]!]) batcher.ack(d);
    expect(acks).toEqual([]); // nothing before the end of the turn
    await nextTurn();
    expect(acks).toEqual([[5, true]]);
    expect(batcher.pending).toBe(0);
  });

  test('an unsettled delivery stops the multiple ack at its tag; settled ones above it are acked singly in the same turn', async () => {
    const { acks, batcher } = recorder();
    const ds = [1, 2, 3, 4, 5].map(delivery);
    ds.forEach((d) => batcher.received(d));
    batcher.ack(ds[0]!);
    batcher.ack(ds[1]!);
    batcher.ack(ds[3]!);
    batcher.ack(ds[4]!);
    await nextTurn();
    // 3 is still running (a slow handler): 1–2 as one, 4 and 5 alone — never a multiple ack covering 3.
    expect(acks).toEqual([
      [2, true],
      [4, false],
      [5, false],
    ]);
    expect(batcher.pending).toBe(1);
    batcher.ack(ds[2]!);
    await nextTurn();
    expect(acks[3]).toEqual([3, true]);
    expect(batcher.pending).toBe(0);
  });

  test('a delivery never settled (left for redelivery) is never covered by a later multiple ack', async () => {
    const { acks, batcher } = recorder();
    const ds = [10, 11, 12, 13].map(delivery);
    ds.forEach((d) => batcher.received(d));
    batcher.ack(ds[1]!);
    await nextTurn();
    batcher.ack(ds[2]!);
    batcher.ack(ds[3]!);
    await nextTurn();
    expect(acks).toEqual([
      [11, false],
      [12, false],
      [13, false],
    ]);
    expect(acks.some(([tag, multiple]) => multiple && tag >= 10)).toBe(false);
  });

  test('flush sends what waits at once (before a channel closes); discard sends nothing more', async () => {
    const { acks, batcher } = recorder();
    const ds = [1, 2, 3].map(delivery);
    ds.forEach((d) => batcher.received(d));
    batcher.ack(ds[0]!);
    batcher.flush();
    expect(acks).toEqual([[1, true]]);
    batcher.ack(ds[1]!);
    batcher.discard();
    batcher.ack(ds[2]!);
    await nextTurn();
    expect(acks).toEqual([[1, true]]);
  });

  test('a channel that throws on ack (closed) makes the batcher stop, not crash', async () => {
    const batcher = new AckBatcher({
      ack: () => {
        throw new Error('Channel closed');
      },
    });
    const d = delivery(1);
    batcher.received(d);
    batcher.ack(d);
    await nextTurn();
    expect(batcher.pending).toBe(0);
  });
});
