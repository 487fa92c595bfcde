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

  test('what waits starts by priority, highest first, and first come first served within one', () => {
    type P = D & { priority: number };
    const started: string[] = [];
    const q = new SlotQueue<P>(1, (d, i) => void started.push(d.messages[i]!), { of: (d) => d.priority, max: 9 });
    const add = (name: string, n: number, priority: number) => q.add({ ...delivery(name, n), priority });
    add('low', 2, 0); // low0 starts at once
    add('mid', 1, 5);
    add('low2-', 1, 0);
    add('high', 2, 9);
    add('mid2-', 1, 5);
    for (let i = 0; i < 6; i++) q.release();
    expect(started).toEqual(['low0', 'high0', 'high1', 'mid0', 'mid2-0', 'low1', 'low2-0']);
    // A higher one that comes while lower ones wait goes before them.
    add('a', 2, 1);
    add('b', 1, 3);
    for (let i = 0; i < 3; i++) q.release();
    expect(started.slice(7)).toEqual(['b0', 'a0', 'a1']);
  });

  /** The order in which one-message waiters of the given priorities start, one slot at a time. */
  function startOrder(priority: { max: number } | undefined, waiters: ReadonlyArray<[string, number]>): string[] {
    type P = D & { priority: number };
    const started: string[] = [];
    const q = new SlotQueue<P>(0, (d, i) => void started.push(d.messages[i]!), priority && { of: (d) => d.priority, max: priority.max });
    for (const [name, p] of waiters) q.add({ ...delivery(name, 1), priority: p });
    for (let i = 0; i < waiters.length; i++) q.release();
    return started;
  }

  test('priorities outside 0–max, or not integers, count as the nearest bound or 0', () => {
    const order = startOrder({ max: 255 }, [['nan', Number.NaN], ['neg', -3], ['huge', 1e9], ['p255-', 255]]);
    expect(order).toEqual(['huge0', 'p255-0', 'nan0', 'neg0']);
  });

  test('above the lane\'s maxPriority a priority ranks as the maximum, first come first served with it (as the broker ranks its queue)', () => {
    const order = startOrder({ max: 9 }, [['nine', 9], ['p200-', 200], ['nine2-', 9], ['five', 5]]);
    expect(order).toEqual(['nine0', 'p200-0', 'nine2-0', 'five0']);
  });

  test('without a priority every waiter ranks the same: first come first served', () => {
    expect(startOrder(undefined, [['low', 0], ['high', 9]])).toEqual(['low0', 'high0']);
  });
});
