import type { TopologyConfig } from '../../src/config/types';
import { clusterPlacementWarnings } from '../../src/topology/cluster-placement';
import { laneConfig } from '../helpers/lane-config';

const NODES = ['rabbit@a', 'rabbit@b', 'rabbit@c'];

function config(overrides: { dead?: 'classic' | 'quorum'; delay?: 'classic' | 'quorum'; lanes?: Array<['classic' | 'quorum', string]> } = {}): TopologyConfig {
  return {
    namespace: 'ns',
    delay: { unitMs: 1000, levels: 20, tolerance: 0.02, queueType: overrides.delay ?? 'quorum', holdMs: 0 },
    lanes: (overrides.lanes ?? [['classic', 'fast']]).map(([queueType, name]) => laneConfig({ name, queueType, maxPriority: queueType === 'quorum' ? 0 : 9 })),
    deadLetters: { queueType: overrides.dead ?? 'classic' },
  };
}

describe('clusterPlacementWarnings', () => {
  test('a single node: nothing to warn of, whatever the queue types', () => {
    expect(clusterPlacementWarnings(['rabbit@a'], config({ delay: 'classic' }))).toEqual([]);
    expect(clusterPlacementWarnings([], config())).toEqual([]);
  });

  test('a cluster on the shipped defaults: the classic dead and unroutable queues and lanes, each naming its setting and the nodes', () => {
    const warnings = clusterPlacementWarnings(NODES, config({ lanes: [['classic', 'fast'], ['classic', 'slow'], ['quorum', 'q']] }));
    expect(warnings.map((w) => w.path)).toEqual(['deadLetters.queueType', 'lanes[].queueType']);
    for (const w of warnings) expect(w.message).toContain('the broker is a cluster of 3 nodes (rabbit@a, rabbit@b, rabbit@c)');
    expect(warnings[0]!.message).toContain('Set deadLetters.queueType: quorum');
    expect(warnings[1]!.message).toContain('lanes fast, slow are classic queues');
    expect(warnings[1]!.message).not.toContain(' q ');
  });

  test('everything quorum: no warning; classic delay queues: a warning of their own', () => {
    expect(clusterPlacementWarnings(NODES, config({ dead: 'quorum', lanes: [['quorum', 'q']] }))).toEqual([]);
    const warnings = clusterPlacementWarnings(NODES, config({ dead: 'quorum', delay: 'classic', lanes: [['quorum', 'q']] }));
    expect(warnings.map((w) => w.path)).toEqual(['delay.queueType']);
    expect(warnings[0]!.message).toContain("a node's crash can lose what they dead-letter");
  });
});
