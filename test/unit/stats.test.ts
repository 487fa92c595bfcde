/**
 * `orbit stats` without a broker: the forecast arithmetic (exact, hand-computed values),
 * the in-flight parsing, the aggregation of queue counts and the human screen.
 */
import { testConfig } from '../helpers/broker';
import { summarize, type QueueCounts } from '../../src/stats/collect';
import { levelWindowMs, levelWindowUnits } from '../../src/stats/forecast';
import { metricsUrl, parseInFlight, parseWorkAhead, scrapeInFlight } from '../../src/stats/in-flight';
import { renderStats, shortDuration } from '../../src/stats/render';
import { buildTopology, type QueueSpec } from '../../src/topology/build';

describe('level windows', () => {
  test('a message in level L falls due within 2^(L+1) − 1 units', () => {
    expect([0, 1, 2, 6, 12, 27].map(levelWindowUnits)).toEqual([1, 3, 7, 127, 8191, 268_435_455]);
    expect(levelWindowMs(1, 1000)).toBe(3000);
    expect(levelWindowMs(11, 1000)).toBe(4_095_000);
    expect(levelWindowMs(3, 60_000)).toBe(15 * 60_000);
    expect(levelWindowMs(0, 250)).toBe(250);
  });

  test('a level that is not a whole number ≥ 0 is a programming error', () => {
    expect(() => levelWindowUnits(-1)).toThrow(RangeError);
    expect(() => levelWindowUnits(1.5)).toThrow(RangeError);
  });
});

describe('shortDuration', () => {
  test('at most the two largest units, the second rounded', () => {
    expect(shortDuration(3000)).toBe('3s');
    expect(shortDuration(4_095_000)).toBe('1h8m'); // 1h8m15s
    expect(shortDuration(8_191_000)).toBe('2h17m'); // 2h16m31s
    expect(shortDuration(127_000)).toBe('2m7s');
    expect(shortDuration(1500)).toBe('1s500ms');
    expect(shortDuration(250)).toBe('250ms');
    expect(shortDuration(3_599_700)).toBe('1h'); // 59m59.7s rounds up into the next unit
    expect(shortDuration(268_435_455_000)).toBe('3106d21h') // 3106d21h24m15s;
    expect(shortDuration(0)).toBe('0ms');
  });
});

describe('in-flight from /metrics', () => {
  test('parses orbit_in_flight per lane and ignores everything else', () => {
    const text = [
      '# HELP orbit_in_flight Messages whose handler runs or whose outcome is being settled.',
      '# TYPE orbit_in_flight gauge',
      'orbit_in_flight{lane="a"} 3',
      'orbit_in_flight{lane="b"} 0',
      'orbit_in_flight{instance="x",lane="c"} 2 1700000000000',
      'orbit_in_flight{instance="y",lane="c"} 4',
      'orbit_in_flight_total{lane="a"} 99',
      'orbit_lane_concurrency{lane="a"} 10',
      'orbit_in_flight 7',
      'orbit_in_flight{lane="d"} NaN',
    ].join('\n');
    expect(Object.fromEntries(parseInFlight(text))).toEqual({ a: 3, b: 0, c: 6 });
  });

  test('metrics URLs: http(s) only; a bare host means /metrics', () => {
    expect(metricsUrl('http://127.0.0.1:9464').href).toBe('http://127.0.0.1:9464/metrics');
    expect(metricsUrl('http://h:1/custom/path').href).toBe('http://h:1/custom/path');
    expect(() => metricsUrl('ftp://h/metrics')).toThrow(/http\(s\) URL/);
    expect(() => metricsUrl('not a url')).toThrow(/http\(s\) URL/);
  });

  test('without a URL in-flight is unknown, with a note saying why', async () => {
    const r = await scrapeInFlight([]);
    expect(r.byLane).toBeNull();
    expect(r.notes.join()).toMatch(/--metrics-url/);
  });
});

describe('summarize', () => {
  const config = testConfig('ns', { delay: { unit: '1s', levels: 4, tolerance: 0 }, lanes: [{ name: 'a' }, { name: 'b' }] });
  const topo = buildTopology(config);

  function countsOf(depths: Record<string, number>, consumers: Record<string, number> = {}): Map<string, QueueCounts | null> {
    return new Map(topo.queues.map((q) => [q.name, { messageCount: depths[q.name] ?? 0, consumerCount: consumers[q.name] ?? 0 }]));
  }

  test('lanes, levels (lowest first, with windows), dead, unroutable and the forecast', () => {
    const counts = countsOf({ 'ns.lane.a': 5, 'ns.delay.1': 7, 'ns.delay.3': 2, 'ns.dead': 2, 'ns.unroutable': 1 }, { 'ns.lane.a': 3 });
    const s = summarize(config, topo.queues, counts, { byLane: new Map([['a', 3]]), notes: [] }, new Date('2030-01-01T00:00:00Z'));
    expect(s.sampledAt).toBe('2030-01-01T00:00:00.000Z');
    // Work-ahead is off in test configs; this report has no work-ahead figures: unknown.
    const workAhead = { enabled: false, idleMs: 5000, maxAdvanceMs: 600_000, maxRate: 100, taken: null, activeDaemons: null };
    expect(s.lanes).toEqual([
      { lane: 'a', ready: 5, consumers: 3, inFlight: 3, queues: ['ns.lane.a'], bundleMax: 1, workAhead },
      { lane: 'b', ready: 0, consumers: 0, inFlight: 0, queues: ['ns.lane.b'], bundleMax: 1, workAhead },
    ]);
    expect(s.levels.map((l) => [l.level, l.messages, l.ttlMs, l.dueWithinMs])).toEqual([
      [0, 0, 1000, 1000],
      [1, 7, 2000, 3000],
      [2, 0, 4000, 7000],
      [3, 2, 8000, 15000],
    ]);
    expect([s.dead, s.unroutable]).toEqual([2, 1]);
    // minute, hour, day: 5 + 7 + 2 (all windows ≤ 15 s)
    expect(s.forecast).toEqual({ minute: 14, hour: 14, day: 14 });
    expect(s.notes).toEqual([]);
  });

  test('every lane-role queue of a lane is summed (partitions); a missing queue counts 0 with a note', () => {
    const partitioned: QueueSpec[] = [
      ...topo.queues.filter((q) => q.role !== 'lane'),
      ...[0, 1, 2].map((p): QueueSpec => ({ name: `ns.lane.a.${p}`, role: 'lane', lane: 'a', arguments: {} })),
      { name: 'ns.lane.b', role: 'lane', lane: 'b', arguments: {} },
    ];
    const counts = new Map<string, QueueCounts | null>([
      ['ns.lane.a.0', { messageCount: 4, consumerCount: 1 }],
      ['ns.lane.a.1', { messageCount: 6, consumerCount: 1 }],
      ['ns.lane.a.2', null],
      ['ns.lane.b', { messageCount: 1, consumerCount: 2 }],
    ]);
    for (const q of topo.queues) if (q.role !== 'lane') counts.set(q.name, { messageCount: 0, consumerCount: 0 });
    const s = summarize(config, partitioned, counts, { byLane: null, notes: ['no url'] }, new Date());
    expect(s.lanes.map((l) => [l.lane, l.ready, l.consumers, l.inFlight])).toEqual([
      ['a', 10, 2, null],
      ['b', 1, 2, null],
    ]);
    expect(s.lanes[0]!.queues).toEqual(['ns.lane.a.0', 'ns.lane.a.1', 'ns.lane.a.2']);
    expect(s.notes).toEqual(['queue ns.lane.a.2 not found (counted as 0)', 'no url']);
  });

  test('the human screen: aligned lane rows, non-empty levels only unless --all, totals and the estimate', () => {
    const counts = countsOf({ 'ns.lane.a': 5, 'ns.lane.b': 120, 'ns.delay.1': 7, 'ns.dead': 2 });
    const s = summarize(config, topo.queues, counts, { byLane: null, notes: ['in-flight needs --metrics-url'] }, new Date(0));
    const text = renderStats(s);
    const lines = text.split('\n');
    expect(lines).toContain('LANE  READY  IN-FLIGHT  CONSUMERS  WORK-AHEAD  RUN EARLY');
    expect(lines).toContain('a         5          -          0  off         -');
    expect(lines).toContain('b       120          -          0  off         -');
    expect(text).not.toContain('work-ahead:'); // no lane has it on
    expect(text).toMatch(/^\s+1\s+7\s+≤ 3s\s+2s$/m);
    expect(text).not.toMatch(/≤ 15s/);
    expect(text).toContain('(3 empty levels not shown; --all shows every level)');
    expect(text).toMatch(/^dead\s+2$/m);
    expect(text).toMatch(/^1 minute\s+~132$/m);
    expect(text).toMatch(/estimate/);
    expect(text).toContain('note: in-flight needs --metrics-url');
    const all = renderStats(s, { allLevels: true });
    expect(all).toMatch(/^\s+3\s+0\s+≤ 15s\s+8s$/m);
    expect(all).not.toContain('not shown');
  });
});

describe('bundled lanes', () => {
  test('the snapshot says which lanes are bundled and that their counts are AMQP messages', () => {
    const config = testConfig('ns', { delay: { unit: '1s', levels: 4, tolerance: 0 }, lanes: [{ name: 'a' }, { name: 'b', bundle: { max: 100 } }] });
    const topo = buildTopology(config);
    const counts = new Map<string, QueueCounts | null>(topo.queues.map((q) => [q.name, { messageCount: 2, consumerCount: 0 }]));
    const s = summarize(config, topo.queues, counts, { byLane: null, notes: [] }, new Date(0));
    expect(s.lanes.map((l) => [l.lane, l.bundleMax])).toEqual([
      ['a', 1],
      ['b', 100],
    ]);
    const note = s.notes.find((n) => n.startsWith('bundled lane b (up to 100 per message)'));
    expect(note).toMatch(/count bundles, not logical messages/);
    expect(renderStats(s)).toContain('note: bundled lane b (up to 100 per message)');
  });

  test('no note when no lane is bundled', () => {
    const config = testConfig('ns', { delay: { unit: '1s', levels: 4, tolerance: 0 }, lanes: [{ name: 'a' }] });
    const topo = buildTopology(config);
    const counts = new Map<string, QueueCounts | null>(topo.queues.map((q) => [q.name, { messageCount: 0, consumerCount: 0 }]));
    const s = summarize(config, topo.queues, counts, { byLane: null, notes: [] }, new Date(0));
    expect(s.notes.some((n) => n.includes('bundled'))).toBe(false);
  });
});

describe('work-ahead in orbit stats', () => {
  const config = testConfig('ns', {
    delay: { unit: '1s', levels: 4, tolerance: 0 },
    lanes: [{ name: 'a', workAhead: { idle: '5s', maxAdvance: '10m', maxRate: 100 } }, { name: 'b', workAhead: false }],
  });
  const topo = buildTopology(config);
  const counts = new Map<string, QueueCounts | null>(topo.queues.map((q) => [q.name, { messageCount: 0, consumerCount: 1 }]));

  test('parses orbit_work_ahead_total and orbit_work_ahead_active per lane', () => {
    const text = [
      '# HELP orbit_work_ahead_total Messages taken from the delay queues ahead of time by an idle lane',
      '# TYPE orbit_work_ahead_total counter',
      'orbit_work_ahead_total{lane="a"} 37',
      'orbit_work_ahead_total{lane="b"} 0',
      'orbit_work_ahead_active{lane="a"} 1',
      'orbit_work_ahead_active{lane="b"} 0',
      'orbit_work_ahead_active_total{lane="b"} 9',
      'orbit_in_flight{lane="a"} 3',
    ].join('\n');
    expect(Object.fromEntries(parseWorkAhead(text))).toEqual({ a: { taken: 37, activeDaemons: 1 }, b: { taken: 0, activeDaemons: 0 } });
  });

  test('without --metrics-url: the setting per lane, and what it means', () => {
    const s = summarize(config, topo.queues, counts, { byLane: null, notes: [] }, new Date(0));
    expect(s.lanes.map((l) => l.workAhead)).toEqual([
      { enabled: true, idleMs: 5000, maxAdvanceMs: 600_000, maxRate: 100, taken: null, activeDaemons: null },
      { enabled: false, idleMs: 5000, maxAdvanceMs: 600_000, maxRate: 100, taken: null, activeDaemons: null },
    ]);
    const text = renderStats(s);
    expect(text).toMatch(/^a\s+0\s+-\s+1\s+≤ 10m early\s+-$/m);
    expect(text).toMatch(/^b\s+0\s+-\s+1\s+off\s+-$/m);
    expect(text).toContain('work-ahead: a lane idle for 5s (free capacity, no delivery) runs delayed messages early');
    expect(text).toContain('RUN EARLY needs --metrics-url');
  });

  test('with daemons reporting: how many ran early, summed over daemons, and (now) while one works ahead', () => {
    const report = {
      byLane: new Map([['a', 0], ['b', 0]]),
      workAhead: new Map([['a', { taken: 37, activeDaemons: 1 }]]),
      notes: [],
    };
    const s = summarize(config, topo.queues, counts, report, new Date(0));
    expect(s.lanes.map((l) => [l.lane, l.workAhead.taken, l.workAhead.activeDaemons])).toEqual([
      ['a', 37, 1],
      ['b', 0, 0],
    ]);
    const text = renderStats(s);
    expect(text).toMatch(/^a\s+0\s+0\s+1\s+≤ 10m early\s+37 \(now\)$/m);
    expect(text).toMatch(/^b\s+0\s+0\s+1\s+off\s+0$/m);
    expect(text).toContain('RUN EARLY: messages run early since each daemon started');
    const json = JSON.parse(JSON.stringify(s)) as { lanes: Array<{ workAhead: unknown }> };
    expect(json.lanes[0]!.workAhead).toEqual({ enabled: true, idleMs: 5000, maxAdvanceMs: 600_000, maxRate: 100, taken: 37, activeDaemons: 1 });
  });
});
