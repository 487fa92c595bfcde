/**
 * `orbit stats` without a broker: the forecast arithmetic (exact, hand-computed values),
 * the in-flight parsing, the aggregation of queue counts and the human screen.
 */
import { testConfig } from '../helpers/broker';
import { summarize, type QueueCounts } from '../../src/stats/collect';
import {
  expectedDueWithin,
  forecast,
  fractionDueWithin,
  HORIZONS_MS,
  levelWindowMs,
  levelWindowUnits,
} from '../../src/stats/forecast';
import { metricsUrl, parseInFlight, scrapeInFlight } from '../../src/stats/in-flight';
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

  test('the share due within a horizon is horizon / window, capped at 1', () => {
    expect(fractionDueWithin(6, 1000, 60_000)).toBeCloseTo(60 / 127, 12);
    expect(fractionDueWithin(5, 1000, 63_000)).toBe(1); // window exactly 63 s
    expect(fractionDueWithin(1, 1000, 60_000)).toBe(1);
    expect(fractionDueWithin(12, 1000, 0)).toBe(0);
  });
});

describe('forecast', () => {
  const unitMs = 1000;

  test('ready 5; levels 1: 7, 6: 11, 12: 13 (unit 1 s) → minute 17, hour 29, day 36', () => {
    const input = { readyNow: 5, unitMs, levels: [{ level: 1, messages: 7 }, { level: 6, messages: 11 }, { level: 12, messages: 13 }] };
    // minute: 5 + 7 (window 3 s) + 11·60/127 + 13·60/8191 = 12 + 5.1969 + 0.0952 = 17.292
    expect(expectedDueWithin(input, HORIZONS_MS.minute)).toBeCloseTo(12 + (11 * 60) / 127 + (13 * 60) / 8191, 10);
    // hour: 5 + 7 + 11 (window 127 s) + 13·3600/8191 = 23 + 5.7136 = 28.714; day: everything (8191 s < 1 d)
    expect(expectedDueWithin(input, HORIZONS_MS.hour)).toBeCloseTo(23 + (13 * 3600) / 8191, 10);
    expect(forecast(input)).toEqual({ minute: 17, hour: 29, day: 36 });
  });

  test('the same messages once the 3 s ones reached their lane: ready 12 → the same buckets', () => {
    expect(forecast({ readyNow: 12, unitMs, levels: [{ level: 6, messages: 11 }, { level: 12, messages: 13 }] })).toEqual({
      minute: 17,
      hour: 29,
      day: 36,
    });
  });

  test('unit 1 min, 1023 messages in level 10 (window 2047 min) → minute 0, hour 30, day 720', () => {
    // 1023/2047 = 0.4998; 1023·60/2047 = 29.985; 1023·1440/2047 = 719.648
    expect(forecast({ readyNow: 0, unitMs: 60_000, levels: [{ level: 10, messages: 1023 }] })).toEqual({ minute: 0, hour: 30, day: 720 });
  });

  test('63 messages in level 5 (window exactly 63 s): 60 within the minute, all within the hour', () => {
    expect(expectedDueWithin({ readyNow: 0, unitMs, levels: [{ level: 5, messages: 63 }] }, HORIZONS_MS.minute)).toBe(60);
    expect(forecast({ readyNow: 0, unitMs, levels: [{ level: 5, messages: 63 }] })).toEqual({ minute: 60, hour: 63, day: 63 });
  });

  test('a long level contributes by its share: 100 000 in level 20 (window 2 097 151 s ≈ 24.3 d)', () => {
    // 100000·60/2097151 = 2.861; ·3600 = 171.66; ·86400 = 4119.8
    expect(forecast({ readyNow: 0, unitMs, levels: [{ level: 20, messages: 100_000 }] })).toEqual({ minute: 3, hour: 172, day: 4120 });
  });

  test('nothing delayed: ready messages are all due now; an empty system forecasts 0', () => {
    expect(forecast({ readyNow: 4, unitMs, levels: [] })).toEqual({ minute: 4, hour: 4, day: 4 });
    expect(forecast({ readyNow: 0, unitMs, levels: [{ level: 3, messages: 0 }] })).toEqual({ minute: 0, hour: 0, day: 0 });
  });

  test('levels sum independently of their order; buckets never decrease with the horizon', () => {
    const levels = [{ level: 12, messages: 13 }, { level: 1, messages: 7 }, { level: 6, messages: 11 }];
    const f = forecast({ readyNow: 5, unitMs, levels });
    expect(f).toEqual(forecast({ readyNow: 5, unitMs, levels: [...levels].reverse() }));
    expect(f.minute).toBeLessThanOrEqual(f.hour);
    expect(f.hour).toBeLessThanOrEqual(f.day);
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
    expect(s.lanes).toEqual([
      { lane: 'a', ready: 5, consumers: 3, inFlight: 3, queues: ['ns.lane.a'], bundleMax: 1 },
      { lane: 'b', ready: 0, consumers: 0, inFlight: 0, queues: ['ns.lane.b'], bundleMax: 1 },
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
    expect(lines).toContain('LANE  READY  IN-FLIGHT  CONSUMERS');
    expect(lines).toContain('a         5          -          0');
    expect(lines).toContain('b       120          -          0');
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
