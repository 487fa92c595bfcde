import type { LaneConfig } from '../../src/config/types';
import { brokerFeatures, QUORUM_DELIVERY_LIMIT } from '../../src/topology/broker-features';
import { buildTopology, levelPattern, storageArguments, tombstoneStreamSpec, type QueueSpec, type Topology } from '../../src/topology/build';

const RABBITMQ_3_10 = brokerFeatures('3.10.8');
import { laneTopology } from '../../src/topology/lane-topology';
import { topologyConfig } from '../helpers/topology-config';

const LANES = [{ name: 'fast', maxPriority: 5 }, { name: 'slow', maxPriority: 0 }, { name: 'bulk' }];

function queue(t: Topology, name: string): QueueSpec {
  const q = t.queues.find((x) => x.name === name);
  if (!q) throw new Error(`no queue ${name}`);
  return q;
}

describe('buildTopology', () => {
  // RabbitMQ 3.10, the machines' shared node: the one series where `x-queue-mode` still acts.
  const classic = buildTopology(topologyConfig(4, '1s', 'classic', LANES), RABBITMQ_3_10);
  const quorum = buildTopology(topologyConfig(4, '1s', 'quorum', LANES), RABBITMQ_3_10);

  it.each([
    [1, 0],
    [4, 3],
    [28, 1],
    [39, 2], // the most RabbitMQ's TTL cap allows at 1 ms
  ])('declares levels + 2 exchanges, levels + lanes + 2 queues, 2·levels + lanes + 1 bindings (levels %p, lanes %p)', (levels, laneCount) => {
    const lanes = ['a', 'b', 'c'].slice(0, laneCount).map((name) => ({ name }));
    const t = buildTopology(topologyConfig(levels, '1ms', 'classic', lanes));
    expect(t.exchanges).toHaveLength(levels + 2);
    expect(t.queues).toHaveLength(levels + laneCount + 2);
    expect(t.bindings).toHaveLength(2 * levels + laneCount + 1);
    expect(t.queues.filter((q) => q.role === 'delay')).toHaveLength(levels);
    expect(t.queues.filter((q) => q.role === 'lane')).toHaveLength(laneCount);
    expect(t.queues.filter((q) => q.role === 'dead').map((q) => q.name)).toEqual(['ns.dead']);
    expect(t.queues.filter((q) => q.role === 'unroutable').map((q) => q.name)).toEqual(['ns.unroutable']);
    expect(t.bindings.filter((b) => b.kind === 'exchange')).toHaveLength(levels);
    // Names are unique per kind (a duplicate declare with other arguments would fail on the broker).
    expect(new Set(t.exchanges.map((e) => e.name)).size).toBe(t.exchanges.length);
    expect(new Set(t.queues.map((q) => q.name)).size).toBe(t.queues.length);
  });

  it('names exchanges and their types', () => {
    expect(classic.exchanges.map((e) => [e.name, e.type])).toEqual([
      ['ns.unroutable', 'fanout'],
      ['ns.deliver', 'topic'],
      ['ns.delay.3', 'topic'],
      ['ns.delay.2', 'topic'],
      ['ns.delay.1', 'topic'],
      ['ns.delay.0', 'topic'],
    ]);
  });

  it('gives deliver an alternate exchange into unroutable, which fans out to the unroutable queue', () => {
    const deliver = classic.exchanges.find((e) => e.name === 'ns.deliver');
    expect(deliver?.arguments).toEqual({ 'alternate-exchange': 'ns.unroutable' });
    expect(classic.bindings).toContainEqual({ kind: 'queue', source: 'ns.unroutable', destination: 'ns.unroutable', pattern: '' });
    for (const e of classic.exchanges.filter((x) => x.name !== 'ns.deliver')) expect(e.arguments).toEqual({});
  });

  it('keeps every classic queue lazy (v2 index) on 3.10', () => {
    for (const q of classic.queues) {
      expect(q.arguments).toMatchObject({ 'x-queue-type': 'classic', 'x-queue-mode': 'lazy', 'x-queue-version': 2 });
      expect(q.arguments['x-dead-letter-strategy']).toBeUndefined();
      expect(q.arguments['x-overflow']).toBeUndefined();
    }
  });

  it('makes delay queues quorum with queueType quorum; lanes, dead and unroutable stay classic lazy', () => {
    for (const q of quorum.queues) {
      if (q.role === 'lane' || q.role === 'dead' || q.role === 'unroutable') {
        expect(q.arguments).toMatchObject({ 'x-queue-type': 'classic', 'x-queue-mode': 'lazy' });
      } else {
        expect(q.arguments['x-queue-type']).toBe('quorum');
        expect(q.arguments['x-queue-mode']).toBeUndefined();
      }
    }
    for (const q of quorum.queues.filter((x) => x.role === 'delay')) {
      expect(q.arguments['x-dead-letter-strategy']).toBe('at-least-once');
      expect(q.arguments['x-overflow']).toBe('reject-publish');
    }
    // Nothing dead-letters out of them, and a quorum queue moves what a look hands back to its end.
    expect(queue(quorum, 'ns.dead').arguments).toEqual(storageArguments('classic', RABBITMQ_3_10));
    expect(queue(quorum, 'ns.unroutable').arguments).toEqual(storageArguments('classic', RABBITMQ_3_10));
    // On a cluster they can be quorum (replicated), whatever the delay queues are.
    const replicated = buildTopology({ ...topologyConfig(4, '1s', 'classic', [{ name: 'fast' }]), deadLetters: { queueType: 'quorum' } }, RABBITMQ_3_10);
    expect(queue(replicated, 'ns.dead').arguments).toEqual(storageArguments('quorum', RABBITMQ_3_10));
    expect(queue(replicated, 'ns.unroutable').arguments).toEqual(storageArguments('quorum', RABBITMQ_3_10));
  });

  it('storageArguments', () => {
    expect(storageArguments('quorum', RABBITMQ_3_10)).toEqual({ 'x-queue-type': 'quorum', 'x-delivery-limit': 2147483647 });
    expect(storageArguments('classic', RABBITMQ_3_10)).toEqual({ 'x-queue-type': 'classic', 'x-queue-mode': 'lazy', 'x-queue-version': 2 });
    expect(storageArguments('classic', brokerFeatures('3.13.7'))).toEqual({ 'x-queue-type': 'classic', 'x-queue-version': 2 });
    expect(storageArguments('classic', brokerFeatures('4.0.5'))).toEqual({ 'x-queue-type': 'classic' });
  });

  it.each(['3.12.0', '3.13.7', '4.0.5', '4.3.0', 'garbage'])('declares no x-queue-mode anywhere for RabbitMQ %s (4.3 refuses it)', (version) => {
    for (const type of ['classic', 'quorum'] as const) {
      const t = buildTopology(topologyConfig(4, '1s', type, LANES), brokerFeatures(version));
      for (const q of t.queues) expect(Object.keys(q.arguments)).not.toContain('x-queue-mode');
    }
  });

  it('gives every quorum queue orbit\'s delivery limit, so no return ever drops a message (4.0 defaults to 20)', () => {
    const lanes = [{ name: 'fast', queueType: 'quorum', maxPriority: 0 }];
    for (const version of ['3.10.8', '4.0.5']) {
      const t = buildTopology(topologyConfig(4, '1s', 'quorum', lanes), brokerFeatures(version));
      for (const q of t.queues) expect(q.arguments['x-delivery-limit']).toBe(q.arguments['x-queue-type'] === 'quorum' ? QUORUM_DELIVERY_LIMIT : undefined);
      expect(t.queues.filter((q) => q.arguments['x-queue-type'] === 'quorum').map((q) => q.role).sort()).toEqual(['delay', 'delay', 'delay', 'delay', 'lane']);
    }
  });

  it('gives a 4.x quorum lane its priorities without x-max-priority (two built-in levels); classic lanes keep it', () => {
    const lanes = [{ name: 'q', queueType: 'quorum', maxPriority: 9 }, { name: 'c', maxPriority: 9 }];
    const t = buildTopology(topologyConfig(4, '1s', 'classic', lanes), brokerFeatures('4.0.5'));
    expect(queue(t, 'ns.lane.q').arguments).toEqual({ 'x-queue-type': 'quorum', 'x-delivery-limit': QUORUM_DELIVERY_LIMIT });
    expect(queue(t, 'ns.lane.c').arguments).toEqual({ 'x-queue-type': 'classic', 'x-max-priority': 9 });
  });

  it.each<[string, number]>([
    ['1s', 1000],
    ['250ms', 250],
    ['1m', 60_000],
  ])('sets TTL 2^L × unit on each level (unit %p)', (unit, unitMs) => {
    const t = buildTopology(topologyConfig(10, unit, 'classic', []));
    const delayQueues = t.queues.filter((q) => q.role === 'delay');
    expect(delayQueues.map((q) => q.level)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    for (const q of delayQueues) {
      expect(q.name).toBe(`ns.delay.${q.level}`);
      expect(q.arguments['x-message-ttl']).toBe(2 ** q.level! * unitMs);
    }
  });

  it('dead-letters level L to exchange L-1 and level 0 to deliver, keeping the routing key', () => {
    for (const t of [classic, quorum]) {
      const chain = t.queues
        .filter((q) => q.role === 'delay')
        .map((q) => [q.name, q.arguments['x-dead-letter-exchange']]);
      expect(chain).toEqual([
        ['ns.delay.3', 'ns.delay.2'],
        ['ns.delay.2', 'ns.delay.1'],
        ['ns.delay.1', 'ns.delay.0'],
        ['ns.delay.0', 'ns.deliver'],
      ]);
      for (const q of t.queues) expect(q.arguments['x-dead-letter-routing-key']).toBeUndefined();
      // Only delay queues expire or dead-letter: a lane, dead or unroutable queue holds its messages.
      for (const q of t.queues.filter((x) => x.role !== 'delay')) {
        expect(q.arguments['x-message-ttl']).toBeUndefined();
        expect(q.arguments['x-dead-letter-exchange']).toBeUndefined();
      }
    }
  });

  it('binds each level: own bit 1 → its queue, bit 0 → the next exchange down', () => {
    const levelBindings = classic.bindings.filter((b) => b.source.startsWith('ns.delay.'));
    expect(levelBindings).toEqual([
      { kind: 'queue', source: 'ns.delay.3', destination: 'ns.delay.3', pattern: '1.#' },
      { kind: 'exchange', source: 'ns.delay.3', destination: 'ns.delay.2', pattern: '0.#' },
      { kind: 'queue', source: 'ns.delay.2', destination: 'ns.delay.2', pattern: '*.1.#' },
      { kind: 'exchange', source: 'ns.delay.2', destination: 'ns.delay.1', pattern: '*.0.#' },
      { kind: 'queue', source: 'ns.delay.1', destination: 'ns.delay.1', pattern: '*.*.1.#' },
      { kind: 'exchange', source: 'ns.delay.1', destination: 'ns.delay.0', pattern: '*.*.0.#' },
      { kind: 'queue', source: 'ns.delay.0', destination: 'ns.delay.0', pattern: '*.*.*.1.#' },
      { kind: 'exchange', source: 'ns.delay.0', destination: 'ns.deliver', pattern: '*.*.*.0.#' },
    ]);
  });

  it('binds deliver to each lane queue by its last word', () => {
    expect(classic.bindings.filter((b) => b.source === 'ns.deliver')).toEqual([
      { kind: 'queue', source: 'ns.deliver', destination: 'ns.lane.fast', pattern: '#.fast' },
      { kind: 'queue', source: 'ns.deliver', destination: 'ns.lane.slow', pattern: '#.slow' },
      { kind: 'queue', source: 'ns.deliver', destination: 'ns.lane.bulk', pattern: '#.bulk' },
    ]);
  });

  it('gives lane queues x-max-priority, absent when maxPriority is 0', () => {
    expect(queue(classic, 'ns.lane.fast')).toMatchObject({ role: 'lane', lane: 'fast', arguments: { 'x-max-priority': 5 } });
    expect(queue(classic, 'ns.lane.bulk').arguments['x-max-priority']).toBe(9); // the default
    expect(queue(classic, 'ns.lane.slow')).toMatchObject({ role: 'lane', lane: 'slow' });
    expect('x-max-priority' in queue(classic, 'ns.lane.slow').arguments).toBe(false);
    for (const q of classic.queues.filter((x) => x.role !== 'lane')) expect(q.arguments['x-max-priority']).toBeUndefined();
  });

  it('needs only namespace, delay, lanes and deadLetters', () => {
    const lane = { name: 'only', maxPriority: 3, partitions: 1, queueType: 'classic' } as LaneConfig;
    const t = buildTopology({ namespace: 'x', delay: { unitMs: 10, levels: 2, tolerance: 0, queueType: 'classic', holdMs: 0 }, lanes: [lane], deadLetters: { queueType: 'classic' } });
    expect(t.queues.map((q) => q.name)).toEqual(['x.unroutable', 'x.delay.1', 'x.delay.0', 'x.lane.only', 'x.dead']);
    expect(queue(t, 'x.delay.1').arguments['x-message-ttl']).toBe(20);
    expect(queue(t, 'x.lane.only').arguments['x-max-priority']).toBe(3);
  });

  it('leaves the tombstone stream to the first cancel: a stream, retired after cancel.retention in small segments', () => {
    expect(buildTopology(topologyConfig(4, '1s', 'classic', LANES)).queues.map((q) => q.role)).not.toContain('tombstones');
    expect(tombstoneStreamSpec({ namespace: 'ns', cancel: { retentionMs: 2 * 86_400_000 } })).toEqual({
      name: 'ns.cancelled',
      role: 'tombstones',
      arguments: { 'x-queue-type': 'stream', 'x-max-age': '172800s', 'x-stream-max-segment-size-bytes': 4_000_000 },
    });
  });

  it('is pure: the same config gives an equal topology', () => {
    const c = topologyConfig(4, '1s', 'classic', LANES);
    expect(buildTopology(c)).toEqual(buildTopology(c));
  });
});

describe('levelPattern', () => {
  it.each<[number, number, 0 | 1, string]>([
    [0, 1, 1, '1.#'],
    [0, 1, 0, '0.#'],
    [7, 8, 1, '1.#'],
    [0, 8, 1, '*.*.*.*.*.*.*.1.#'],
    [3, 8, 0, '*.*.*.*.0.#'],
    [27, 28, 0, '0.#'],
  ])('level %p of %p, bit %p → %p', (level, levels, bit, pattern) => {
    expect(levelPattern(level, levels, bit)).toBe(pattern);
  });

  it('puts the bit at word levels-1-level, so the routing key reads MSB first', () => {
    for (let level = 0; level < 28; level++) {
      const words = levelPattern(level, 28, 1).split('.');
      expect(words).toHaveLength(28 - level + 1);
      expect(words.indexOf('1')).toBe(28 - 1 - level);
      expect(words.at(-1)).toBe('#');
      expect(words.slice(0, -2).every((w) => w === '*')).toBe(true);
    }
  });
});

describe('laneTopology', () => {
  const t = buildTopology(topologyConfig(4, '1s', 'classic', LANES));

  it('slices one lane: its queue, the deliver exchange and the binding between them', () => {
    const slice = laneTopology(t, 'fast');
    expect(slice.queues).toEqual([queue(t, 'ns.lane.fast')]);
    expect(slice.bindings).toEqual([{ kind: 'queue', source: 'ns.deliver', destination: 'ns.lane.fast', pattern: '#.fast' }]);
    expect(slice.exchanges).toEqual([{ name: 'ns.deliver', type: 'topic', arguments: { 'alternate-exchange': 'ns.unroutable' } }]);
  });

  it('keeps each lane to itself', () => {
    for (const lane of ['fast', 'slow', 'bulk']) {
      const slice = laneTopology(t, lane);
      expect(slice.queues.map((q) => q.name)).toEqual([`ns.lane.${lane}`]);
      expect(slice.bindings.map((b) => b.destination)).toEqual([`ns.lane.${lane}`]);
      expect(slice.exchanges.map((e) => e.name)).toEqual(['ns.deliver']);
    }
  });

  it('is empty for an unknown lane, and never contains delay or dead queues', () => {
    expect(laneTopology(t, 'nope')).toEqual({ exchanges: [], queues: [], bindings: [] });
    // A lane whose name matches no lane queue must not pick up other roles by name.
    expect(laneTopology(t, 'dead').queues).toEqual([]);
  });
});
