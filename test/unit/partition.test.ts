import { buildTopology } from '../../src/topology/build';
import { names } from '../../src/naming/names';
import { destinationFor, laneOfDestination, laneQueues, partitionOf } from '../../src/naming/partition';
import { laneConfig } from '../helpers/lane-config';

describe('partitions', () => {
  test('partitionOf is stable and within range', () => {
    for (let i = 0; i < 1000; i++) {
      const p = partitionOf(`id-${i}`, 4);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(4);
      expect(partitionOf(`id-${i}`, 4)).toBe(p);
    }
    expect(partitionOf('anything', 1)).toBe(0);
  });

  test('spreads ids evenly enough (each of 4 partitions gets 20–30% of 10,000)', () => {
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 10_000; i++) counts[partitionOf(`msg-${i}`, 4)]!++;
    for (const c of counts) {
      expect(c).toBeGreaterThan(2000);
      expect(c).toBeLessThan(3000);
    }
  });

  test('destination words: plain lane name, or lane~p for partitioned lanes', () => {
    expect(destinationFor(laneConfig({ name: 'fast' }), 'x')).toBe('fast');
    const d = destinationFor(laneConfig({ name: 'fast', partitions: 4 }), 'x');
    expect(d).toMatch(/^fast~[0-3]$/);
    expect(laneOfDestination(d)).toBe('fast');
    expect(laneOfDestination('fast')).toBe('fast');
  });

  test('laneQueues and the topology: one queue and binding per partition', () => {
    const n = names('ns');
    const lane = laneConfig({ name: 'p', partitions: 3 });
    expect(laneQueues(lane, n)).toEqual(['ns.lane.p.0', 'ns.lane.p.1', 'ns.lane.p.2']);
    const t = buildTopology({ namespace: 'ns', delay: { unitMs: 1000, levels: 4, tolerance: 0, queueType: 'classic', holdMs: 0 }, lanes: [lane], deadLetters: { queueType: 'classic' } });
    expect(t.queues.filter((q) => q.role === 'lane').map((q) => q.name)).toEqual(['ns.lane.p.0', 'ns.lane.p.1', 'ns.lane.p.2']);
    expect(t.bindings.filter((b) => b.source === 'ns.deliver').map((b) => [b.destination, b.pattern])).toEqual([
      ['ns.lane.p.0', '#.p~0'],
      ['ns.lane.p.1', '#.p~1'],
      ['ns.lane.p.2', '#.p~2'],
    ]);
  });

  test('a quorum lane queue has no priority and is quorum', () => {
    const lane = laneConfig({ name: 'q', queueType: 'quorum', maxPriority: 0 });
    const t = buildTopology({ namespace: 'ns', delay: { unitMs: 1000, levels: 4, tolerance: 0, queueType: 'classic', holdMs: 0 }, lanes: [lane], deadLetters: { queueType: 'classic' } });
    const q = t.queues.find((x) => x.role === 'lane')!;
    expect(q.arguments['x-queue-type']).toBe('quorum');
    expect(q.arguments['x-max-priority']).toBeUndefined();
  });
});
