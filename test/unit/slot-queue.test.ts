import { SlotQueue } from '../../src/worker/slot-queue';

const delivery = (name: string, n: number) => ({ name, messages: Array.from({ length: n }, (_, i) => `${name}${i}`) });
type D = ReturnType<typeof delivery>;

describe('SlotQueue: handler slots for a lane’s logical messages', () => {
  test('starts messages in delivery order, never more at once than the slots, and the next one as a slot is given back', () => {
    const started: string[] = [];
    const q = new SlotQueue<D>(2, (d, i) => void started.push(d.messages[i]!));
    q.add(delivery('a', 3));
    q.add(delivery('b', 2));
    expect(started).toEqual(['a0', 'a1']);
    q.release();
    expect(started).toEqual(['a0', 'a1', 'a2']);
    q.release();
    q.release();
    expect(started).toEqual(['a0', 'a1', 'a2', 'b0', 'b1']);
    q.release();
    q.add(delivery('c', 1));
    expect(started).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'c0']);
  });

  test('a delivery of no messages takes nothing', () => {
    const started: string[] = [];
    const q = new SlotQueue<D>(1, (d, i) => void started.push(d.messages[i]!));
    q.add(delivery('empty', 0));
    q.add(delivery('a', 1));
    expect(started).toEqual(['a0']);
  });

  test('a slot given back from inside start (a message settled at once) starts the next without recursion, however many wait', () => {
    let count = 0;
    let depth = 0;
    let deepest = 0;
    const q: SlotQueue<D> = new SlotQueue<D>(1, () => {
      depth++;
      deepest = Math.max(deepest, depth);
      count++;
      q.release();
      depth--;
    });
    for (let i = 0; i < 2_000; i++) q.add(delivery(`d${i}`, 100));
    expect(count).toBe(200_000);
    expect(deepest).toBe(1);
  });

  test('many deliveries started through one at a time keep their order across compactions', () => {
    const started: string[] = [];
    const q = new SlotQueue<D>(0, (d, i) => void started.push(d.messages[i]!));
    for (let i = 0; i < 3_000; i++) q.add(delivery(`d${i}.`, 2));
    for (let i = 0; i < 6_000; i++) q.release();
    expect(started).toHaveLength(6_000);
    expect(started.slice(0, 3)).toEqual(['d0.0', 'd0.1', 'd1.0']);
    expect(started.slice(-2)).toEqual(['d2999.0', 'd2999.1']);
    expect(new Set(started).size).toBe(6_000);
  });
});
