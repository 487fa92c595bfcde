import { LaneCapacity } from '../../src/worker/lane-capacity';

describe('LaneCapacity', () => {
  test('free capacity counts every held message, early ones included', () => {
    const c = new LaneCapacity(3, 0);
    c.hold(1, false);
    c.hold(1, true);
    expect(c.free).toBe(1);
    c.hold(5, false); // a bundle bigger than the room left
    expect(c.free).toBe(0);
    expect(c.idleFor(10_000)).toBe(0);
  });

  test('idle since the later of the last delivery and the moment real work left room', () => {
    const c = new LaneCapacity(2, 0);
    expect(c.idleFor(1000)).toBe(1000);
    c.delivered(1000);
    c.hold(2, false); // full from broker deliveries
    c.release(false, 4000);
    expect(c.idleFor(5000)).toBe(1000); // room again since 4000
    c.release(false, 4500);
    c.delivered(4800);
    expect(c.idleFor(5000)).toBe(200);
  });

  test('early messages never make the lane busy: its idleness goes on while work-ahead fills it', () => {
    const c = new LaneCapacity(2, 0);
    c.hold(1, true);
    expect(c.idleFor(3000)).toBe(3000);
    c.release(true, 3000);
    expect(c.idleFor(4000)).toBe(4000);
  });
});
