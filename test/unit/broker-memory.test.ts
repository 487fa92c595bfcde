import { BrokerMemoryWatch } from '../../src/amqp/broker-memory-watch';
import { parseNodeMemory, type NodesMemoryResult } from '../../src/amqp/read-broker-nodes';
import type { AmqpConfig, QueueType, TopologyConfig } from '../../src/config/types';
import { quorumSetting, RECOMMENDED_WAL_BYTES, WAL_MEMORY_WARN_BYTES, walMemoryWarnings } from '../../src/topology/broker-memory';
import { capturingLogger } from '../helpers/capturing-logger';
import { laneConfig } from '../helpers/lane-config';

function config(types: { delay?: QueueType; lane?: QueueType; dead?: QueueType } = {}): TopologyConfig {
  return {
    namespace: 'ns',
    delay: { unitMs: 1000, levels: 20, tolerance: 0.02, queueType: types.delay ?? 'quorum', holdMs: 0 },
    lanes: [laneConfig({ name: 'fast', queueType: types.lane ?? 'classic', maxPriority: types.lane === 'quorum' ? 0 : 9 })],
    deadLetters: { queueType: types.dead ?? 'classic' },
  };
}

const MB = 1e6;

describe('walMemoryWarnings', () => {
  test('a node above the bound on the shipped defaults: one warning naming the node, its figures, the setting and the value to set', () => {
    const [w, ...rest] = walMemoryWarnings(
      [
        { name: 'rabbit@a', binaryBytes: 300 * MB, quorumEtsBytes: 40 * MB },
        { name: 'rabbit@b', binaryBytes: 60 * MB, quorumEtsBytes: 30 * MB },
      ],
      config(),
    );
    expect(rest).toEqual([]);
    expect(w).toMatchObject({ node: 'rabbit@a', path: 'delay.queueType' });
    expect(w!.message).toContain('holds 340 MB in binaries and quorum tables (memory_breakdown: binary 300 MB, quorum_ets 40 MB)');
    expect(w!.message).toContain(`raft.wal_max_size_bytes = ${RECOMMENDED_WAL_BYTES}`);
  });

  test('the bound is on binaries and quorum tables together, and strict', () => {
    const at = (binaryBytes: number, quorumEtsBytes: number) => walMemoryWarnings([{ name: 'n', binaryBytes, quorumEtsBytes }], config()).length;
    expect(at(WAL_MEMORY_WARN_BYTES, 0)).toBe(0);
    expect(at(WAL_MEMORY_WARN_BYTES - 10, 11)).toBe(1);
    expect(at(0, WAL_MEMORY_WARN_BYTES + 1)).toBe(1);
    // What a node with a 64 MB WAL held at 10 M resident (docs/BENCHMARKS.md): well below.
    expect(at(62 * MB, 34 * MB)).toBe(0);
  });

  test('only when orbit uses quorum queues, naming the setting that does (delay queues first)', () => {
    const big = [{ name: 'n', binaryBytes: 400 * MB, quorumEtsBytes: 0 }];
    expect(walMemoryWarnings(big, config({ delay: 'classic' }))).toEqual([]);
    expect(quorumSetting(config({ delay: 'classic' }))).toBeUndefined();
    expect(quorumSetting(config({ delay: 'classic', lane: 'quorum', dead: 'quorum' }))).toBe('lanes[].queueType');
    expect(quorumSetting(config({ delay: 'classic', dead: 'quorum' }))).toBe('deadLetters.queueType');
    expect(walMemoryWarnings(big, config({ delay: 'classic', dead: 'quorum' }))[0]!.path).toBe('deadLetters.queueType');
  });
});

describe('parseNodeMemory', () => {
  test("reads binary and quorum_ets from the management API's breakdown", () => {
    const body = JSON.stringify({ memory: { binary: 257656, quorum_ets: 24472, code: 34681550, total: { erlang: 72361032, rss: 153935872 } } });
    expect(parseNodeMemory('rabbit@a', body)).toEqual({ name: 'rabbit@a', binaryBytes: 257656, quorumEtsBytes: 24472 });
  });

  test('a node without figures (down: "not_available") or an answer of another shape gives none', () => {
    expect(parseNodeMemory('n', JSON.stringify({ memory: 'not_available' }))).toBeUndefined();
    expect(parseNodeMemory('n', JSON.stringify({ memory: { binary: 1 } }))).toBeUndefined();
    expect(parseNodeMemory('n', 'null')).toBeUndefined();
    expect(() => parseNodeMemory('n', '<html>')).toThrow();
  });
});

describe('BrokerMemoryWatch', () => {
  test('warns once per node while it shows the symptom, again once it came back; a look without an answer warns nothing', async () => {
    const { logger, lines } = capturingLogger();
    const figures: Array<NodesMemoryResult> = [];
    const at = (binaryMB: number): NodesMemoryResult => ({ nodes: [{ name: 'rabbit@a', binaryBytes: binaryMB * MB, quorumEtsBytes: 10 * MB }], from: 'http://a:15672' });
    // The reader is given: the AMQP settings are never used.
    const watch = new BrokerMemoryWatch({} as AmqpConfig, config(), logger, {
      nodes: ['rabbit@a'],
      read: () => Promise.resolve(figures.shift()!),
    });
    const warns = () => lines.filter((l) => l.level === 'warn').length;
    figures.push(at(400), at(410), at(50), at(420), { unavailable: 'http://a:15672: ECONNREFUSED' });
    expect(await watch.check()).toHaveLength(1);
    expect(warns()).toBe(1);
    expect(await watch.check()).toHaveLength(1); // still there: reported, not logged again
    expect(warns()).toBe(1);
    expect(await watch.check()).toHaveLength(0); // recovered
    expect(await watch.check()).toHaveLength(1); // back: logged again
    expect(warns()).toBe(2);
    expect(await watch.check()).toEqual([]); // no answer: nothing judged
    expect(warns()).toBe(2);
    watch.stop();
  });
});
