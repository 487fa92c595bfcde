/**
 * Removed ("stranded") lanes without a broker: what the lane record holds and how an update
 * changes it, how recorded queues are sorted once probed, what a moved message becomes, and
 * the STRANDED LANES section of `orbit stats`.
 */
import { classifyStranded } from '../../src/amqp/stranded-lanes';
import { BUNDLE_HEADER, BUNDLE_VERSION, encodeBundle } from '../../src/message/bundle';
import { HEADER } from '../../src/message/headers';
import { movedMessages } from '../../src/lanes/move-stranded';
import { summarize } from '../../src/stats/collect';
import { renderStats } from '../../src/stats/render';
import { buildTopology } from '../../src/topology/build';
import { decodeEntry, encodeEntry, laneRecordEntries, planRecordUpdate, unconfiguredQueues } from '../../src/topology/lane-record';
import { names } from '../../src/naming/names';
import { testConfig } from '../helpers/broker';

const a = { lane: 'a', queue: 'ns.lane.a' };
const b = { lane: 'b', queue: 'ns.lane.b' };
const c = { lane: 'c', queue: 'ns.lane.c' };

describe('lane record entries', () => {
  test('one per lane queue: a partitioned lane records each partition', () => {
    const config = testConfig('ns', { lanes: [{ name: 'a' }, { name: 'p', partitions: 3 }] });
    expect(laneRecordEntries(config)).toEqual([
      a,
      { lane: 'p', queue: 'ns.lane.p.0' },
      { lane: 'p', queue: 'ns.lane.p.1' },
      { lane: 'p', queue: 'ns.lane.p.2' },
    ]);
  });

  test('the record queue has a name of its own, which no lane queue can take', () => {
    expect(names('ns').laneRecord).toBe('ns.lane-record');
    const config = testConfig('ns', { lanes: [{ name: 'record' }] });
    expect(buildTopology(config).queues.map((q) => q.name)).not.toContain('ns.lane-record');
  });

  test('encode and decode round-trip', () => {
    expect(decodeEntry(encodeEntry(a), 'ns')).toEqual(a);
    expect(decodeEntry(encodeEntry({ lane: 'p', queue: 'ns.lane.p.2' }), 'ns')).toEqual({ lane: 'p', queue: 'ns.lane.p.2' });
  });

  test('anything but a lane queue of the namespace is refused: the record never points orbit elsewhere', () => {
    const bad = [
      'not json',
      '42',
      'null',
      JSON.stringify({ lane: 'b' }),
      JSON.stringify({ lane: '', queue: 'ns.lane.' }),
      JSON.stringify({ lane: 'b', queue: 'ns.dead' }),
      JSON.stringify({ lane: 'b', queue: 'other.lane.b' }),
      JSON.stringify({ lane: 'b', queue: 'ns.lane.bx' }),
      JSON.stringify({ lane: 'b', queue: 'ns.lane.b.x' }),
      JSON.stringify({ lane: 'b', queue: 'ns.lane.a' }),
      JSON.stringify({ lane: 'a.b', queue: 'ns.lane.aXb' }),
    ];
    for (const body of bad) expect([body, decodeEntry(Buffer.from(body), 'ns')]).toEqual([body, undefined]);
  });
});

describe('planRecordUpdate', () => {
  test('adds what is missing, keeps what is there, in order', () => {
    expect(planRecordUpdate([a, b], [a, c])).toEqual({ keep: [true, true], add: [c], record: [a, b, c] });
  });

  test('an empty record gets every wanted queue, each once', () => {
    expect(planRecordUpdate([], [a, b, a])).toEqual({ keep: [], add: [a, b], record: [a, b] });
  });

  test('removes dropped queues, duplicates (two daemons recording at once) and unreadable messages', () => {
    expect(planRecordUpdate([a, undefined, b, a, c], [], new Set(['ns.lane.c']))).toEqual({
      keep: [true, false, true, false, false],
      add: [],
      record: [a, b],
    });
  });

  test('a dropped queue is not added back even when wanted', () => {
    expect(planRecordUpdate([], [a], new Set(['ns.lane.a']))).toEqual({ keep: [], add: [], record: [] });
  });
});

describe('unconfiguredQueues and classifyStranded', () => {
  test('recorded queues the config does not declare, each once', () => {
    expect(unconfiguredQueues([a, b, c, b], [a])).toEqual([b, c]);
    expect(unconfiguredQueues([a], [a])).toEqual([]);
  });

  test('a lane whose partitions changed leaves its old queue among them', () => {
    const now = laneRecordEntries(testConfig('ns', { lanes: [{ name: 'a', partitions: 2 }] }));
    expect(unconfiguredQueues([a, ...now], now)).toEqual([a]);
  });

  test('missing: gone; consumed: served by another daemon; otherwise stranded (even when empty); unprobed: no verdict', () => {
    const d = { lane: 'd', queue: 'ns.lane.d' };
    const e = { lane: 'e', queue: 'ns.lane.e' };
    const counts = new Map([
      ['ns.lane.a', { messageCount: 4, consumerCount: 0 }],
      ['ns.lane.b', null],
      ['ns.lane.c', { messageCount: 9, consumerCount: 2 }],
      ['ns.lane.d', { messageCount: 0, consumerCount: 0 }],
    ]);
    expect(classifyStranded([a, b, c, d, e], counts)).toEqual({
      stranded: [
        { lane: 'a', queue: 'ns.lane.a', messages: 4, consumers: 0 },
        { lane: 'd', queue: 'ns.lane.d', messages: 0, consumers: 0 },
      ],
      served: [{ lane: 'c', queue: 'ns.lane.c', messages: 9, consumers: 2 }],
      gone: ['ns.lane.b'],
    });
  });
});

describe('movedMessages', () => {
  const to = { name: 'a', maxPriority: 3 };
  const now = 1_700_000_000_000;

  test('a plain message keeps id, body, user headers, runs and key; due now, attempts reset, priority capped', () => {
    const msg = {
      content: Buffer.from('{"x":1}'),
      properties: {
        messageId: 'm-1',
        priority: 7,
        headers: {
          trace: 'abc',
          [HEADER.due]: now - 60_000,
          [HEADER.runs]: 4,
          [HEADER.attempt]: 2,
          [HEADER.lane]: 'b',
          [HEADER.key]: 'k-9',
          [HEADER.generation]: now - 86_400_000.5,
          'x-death': [{ queue: 'ns.delay.0' }],
        },
      },
    } as unknown as Parameters<typeof movedMessages>[0];
    expect(movedMessages(msg, to, now)).toEqual([
      { id: 'm-1', lane: 'a', body: Buffer.from('{"x":1}'), priority: 3, dueAt: now, delayMs: 0, runs: 4, attempt: 0, key: 'k-9', generation: now - 86_400_000.5, headers: { trace: 'abc' } },
    ]);
  });

  test('a bundle becomes its logical messages', () => {
    const body = encodeBundle([
      { id: 'e1', key: undefined, runs: 1, attempt: 1, dueAt: now - 5, generation: now - 7, body: Buffer.from('one') },
      { id: 'e2', key: 'k', runs: 0, attempt: 0, dueAt: now - 9, body: Buffer.from('two') },
    ]);
    const msg = { content: body, properties: { messageId: 'bundle', priority: 1, headers: { [BUNDLE_HEADER]: BUNDLE_VERSION } } } as unknown as Parameters<typeof movedMessages>[0];
    expect(movedMessages(msg, to, now)).toEqual([
      { id: 'e1', lane: 'a', body: Buffer.from('one'), priority: 1, dueAt: now, delayMs: 0, runs: 1, attempt: 0, key: undefined, generation: now - 7, headers: {} },
      { id: 'e2', lane: 'a', body: Buffer.from('two'), priority: 1, dueAt: now, delayMs: 0, runs: 0, attempt: 0, key: 'k', generation: 0, headers: {} },
    ]);
  });

  test('a bundle that does not decode throws BadBodyError (the move dead-letters it)', () => {
    const msg = { content: Buffer.from([1, 0, 0]), properties: { headers: { [BUNDLE_HEADER]: BUNDLE_VERSION } } } as unknown as Parameters<typeof movedMessages>[0];
    expect(() => movedMessages(msg, to, now)).toThrow(expect.objectContaining({ code: 'BAD_BODY' }));
  });

  test('a message without an id gets one', () => {
    const msg = { content: Buffer.from('x'), properties: { headers: {} } } as unknown as Parameters<typeof movedMessages>[0];
    const [m] = movedMessages(msg, to, now);
    expect(m!.id).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('orbit stats: STRANDED LANES', () => {
  const config = testConfig('ns', { delay: { unit: '1s', levels: 2, tolerance: 0 }, lanes: [{ name: 'a' }] });
  const topo = buildTopology(config);
  const counts = new Map(topo.queues.map((q) => [q.name, { messageCount: 0, consumerCount: 0 }]));
  const inFlight = { byLane: null, notes: [] };

  test('listed in the snapshot and on the screen; a lane served by another daemon is a note', () => {
    const s = summarize(config, topo.queues, counts, inFlight, new Date(0), {
      stranded: [{ lane: 'b', queue: 'ns.lane.b', messages: 12, consumers: 0 }],
      served: [{ lane: 'c', queue: 'ns.lane.c', messages: 3, consumers: 1 }],
    });
    expect(s.stranded).toEqual([{ lane: 'b', queue: 'ns.lane.b', messages: 12, consumers: 0 }]);
    expect(s.notes).toContain('lane c is not in this config, but ns.lane.c has 1 consumer(s) (a daemon with another config): not stranded');
    const text = renderStats(s);
    expect(text).toContain('STRANDED LANES');
    expect(text).toMatch(/^LANE\s+QUEUE\s+MESSAGES$/m);
    expect(text).toMatch(/^b\s+ns\.lane\.b\s+12$/m);
  });

  test('no section when nothing is stranded', () => {
    const s = summarize(config, topo.queues, counts, inFlight, new Date(0));
    expect(s.stranded).toEqual([]);
    expect(renderStats(s)).not.toContain('STRANDED');
  });
});
