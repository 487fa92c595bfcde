import type { DelayConfig, LaneConfig } from '../../src/config/types';
import { DelayOutOfRangeError, InvalidMessageError } from '../../src/errors';
import { parsePublishLine } from '../../src/publish/json-lines';
import { resolveId, resolveSchedule, type ScheduleContext, type ScheduleInput } from '../../src/publish/schedule';
import { laneConfig } from '../helpers/lane-config';

const NOW = Date.parse('2024-05-01T12:00:00.000Z');

function lane(name: string, maxPriority: number): LaneConfig {
  return laneConfig({ name, concurrency: 1, maxPriority });
}

const delay: DelayConfig = { unitMs: 1000, levels: 20, tolerance: 0, queueType: 'classic', holdMs: 0 };
const MAX = (2 ** 20 - 1) * 1000;
const lanes = new Map([
  ['fast', lane('fast', 9)],
  ['flat', lane('flat', 0)],
]);

function ctx(overrides: Partial<ScheduleContext> = {}): ScheduleContext {
  return { lanes, delay, now: NOW, ...overrides };
}

/** The error `fn` throws, checked to be an InvalidMessageError with `code`. */
function refused(fn: () => unknown, code: string): InvalidMessageError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InvalidMessageError);
  expect((err as InvalidMessageError).code).toBe(code);
  return err as InvalidMessageError;
}

const schedule = (input: ScheduleInput, c: Partial<ScheduleContext> = {}) => resolveSchedule(input, ctx(c));

describe('resolveSchedule: lane', () => {
  it('resolves a known lane to its config', () => {
    expect(schedule({ lane: 'fast' })).toEqual({ lane: lanes.get('fast'), delayMs: 0, dueAt: NOW, priority: 0 });
  });

  it.each([[undefined], [''], [null], [5]])('requires a lane (%p)', (value) => {
    expect(refused(() => schedule({ lane: value }), 'UNKNOWN_LANE').message).toBe('lane is required');
  });

  it('refuses an unknown lane, listing the known ones', () => {
    const err = refused(() => schedule({ lane: 'fats' }), 'UNKNOWN_LANE');
    expect(err.message).toBe('unknown lane "fats" (lanes: fast, flat)');
  });

  it('says when no lane is configured', () => {
    const err = refused(() => schedule({ lane: 'fast' }, { lanes: new Map() }), 'UNKNOWN_LANE');
    expect(err.message).toContain('none configured');
  });

  it('falls back to defaultLane, which an explicit lane overrides', () => {
    expect(schedule({}, { defaultLane: 'flat' }).lane.name).toBe('flat');
    expect(schedule({ lane: 'fast' }, { defaultLane: 'flat' }).lane.name).toBe('fast');
    refused(() => schedule({}, { defaultLane: 'gone' }), 'UNKNOWN_LANE');
  });
});

describe('resolveSchedule: delay and at', () => {
  it('no delay means now', () => {
    expect(schedule({ lane: 'fast' })).toMatchObject({ delayMs: 0, dueAt: NOW });
  });

  it.each<[unknown, number]>([
    [0, 0],
    [1500, 1500],
    [1.2, 2],
    ['1500', 1500],
    ['90s', 90_000],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['250ms', 250],
  ])('delay %p → %p ms (not yet rounded to the unit)', (value, ms) => {
    expect(schedule({ lane: 'fast', delay: value })).toMatchObject({ delayMs: ms, dueAt: NOW + ms });
  });

  it.each<[unknown]>([[-1], ['-5s'], ['soon'], [''], [NaN], [Infinity], [true], [{}], [null]])('refuses delay %p with BAD_DELAY', (value) => {
    refused(() => schedule({ lane: 'fast', delay: value }), 'BAD_DELAY');
  });

  it('accepts the max delay and refuses anything that rounds past it', () => {
    expect(schedule({ lane: 'fast', delay: MAX }).delayMs).toBe(MAX);
    const err = refused(() => schedule({ lane: 'fast', delay: MAX + 1 }), 'DELAY_OUT_OF_RANGE');
    expect(err).toBeInstanceOf(DelayOutOfRangeError);
    refused(() => schedule({ lane: 'fast', at: NOW + MAX + 1 }), 'DELAY_OUT_OF_RANGE');
  });

  it.each<[string, unknown]>([
    ['a Date', new Date(NOW + 60_000)],
    ['an ISO string', new Date(NOW + 60_000).toISOString()],
    ['an ISO string with offset', '2024-05-01T14:01:00+02:00'],
    ['epoch ms', NOW + 60_000],
  ])('at as %s', (_what, at) => {
    expect(schedule({ lane: 'fast', at })).toMatchObject({ delayMs: 60_000, dueAt: NOW + 60_000 });
  });

  it('at in the past is due now: lateness counts from when the message existed, not from 1970', () => {
    expect(schedule({ lane: 'fast', at: NOW - 10_000 })).toMatchObject({ delayMs: 0, dueAt: NOW });
    expect(schedule({ lane: 'fast', at: new Date(0) })).toMatchObject({ delayMs: 0, dueAt: NOW });
    expect(schedule({ lane: 'fast', at: '0' })).toMatchObject({ delayMs: 0, dueAt: NOW });
  });

  it('takes epoch ms as text, as the CLI passes it (--at 1714572060000)', () => {
    expect(schedule({ lane: 'fast', at: String(NOW + 60_000) })).toMatchObject({ delayMs: 60_000, dueAt: NOW + 60_000 });
    expect(schedule({ lane: 'fast', at: ` ${NOW + 60_000} ` })).toMatchObject({ delayMs: 60_000, dueAt: NOW + 60_000 });
  });

  it.each<[unknown]>([['yesterday'], [''], ['   '], [NaN], [new Date('invalid')], [{}], [true], [null]])('refuses at %p with BAD_DELAY', (at) => {
    refused(() => schedule({ lane: 'fast', at }), 'BAD_DELAY');
  });

  it('refuses both delay and at', () => {
    const err = refused(() => schedule({ lane: 'fast', delay: 1000, at: NOW + 1000 }), 'BAD_DELAY');
    expect(err.message).toContain('either delay or at');
    refused(() => schedule({ lane: 'fast', delay: 0, at: NOW }), 'BAD_DELAY');
  });
});

describe('resolveSchedule: priority', () => {
  it('defaults to 0', () => {
    expect(schedule({ lane: 'fast' }).priority).toBe(0);
    expect(schedule({ lane: 'flat' }).priority).toBe(0);
  });

  it('accepts 0 … the lane\'s maxPriority', () => {
    for (let p = 0; p <= 9; p++) expect(schedule({ lane: 'fast', priority: p }).priority).toBe(p);
  });

  it.each<[string, unknown]>([
    ['fast', 10],
    ['fast', -1],
    ['fast', 1.5],
    ['fast', '3'],
    ['fast', NaN],
    ['flat', 1],
  ])('refuses on lane %p priority %p with BAD_PRIORITY', (laneName, priority) => {
    const err = refused(() => schedule({ lane: laneName, priority }), 'BAD_PRIORITY');
    expect(err.message).toContain(`for lane "${laneName}"`);
  });

  it('uses defaultPriority (a reschedule keeps its priority), clamped to the lane', () => {
    expect(schedule({ lane: 'fast' }, { defaultPriority: 7 }).priority).toBe(7);
    expect(schedule({ lane: 'flat' }, { defaultPriority: 7 }).priority).toBe(0);
    expect(schedule({ lane: 'fast', priority: 2 }, { defaultPriority: 7 }).priority).toBe(2);
  });

  it('checks the input order: lane before delay before priority', () => {
    refused(() => schedule({ lane: 'nope', delay: -1, priority: 99 }), 'UNKNOWN_LANE');
    refused(() => schedule({ lane: 'fast', delay: -1, priority: 99 }), 'BAD_DELAY');
  });
});

describe('resolveId', () => {
  it('generates a UUID v4 when absent, a new one each time', () => {
    const a = resolveId(undefined);
    const b = resolveId(null);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(b).toMatch(/^[0-9a-f-]{36}$/);
    expect(a).not.toBe(b);
  });

  it('keeps the caller\'s id up to 255 bytes', () => {
    expect(resolveId('order-42')).toBe('order-42');
    expect(resolveId('x'.repeat(255))).toBe('x'.repeat(255));
    expect(resolveId('é'.repeat(127))).toBe('é'.repeat(127)); // 254 bytes
  });

  it.each<[string, unknown]>([
    ['256 ASCII bytes', 'x'.repeat(256)],
    ['128 two-byte chars (256 bytes, 128 chars)', 'é'.repeat(128)],
    ['empty', ''],
    ['a number', 42],
    ['an object', { id: 1 }],
  ])('refuses %s with BAD_ID', (_what, id) => {
    refused(() => resolveId(id), 'BAD_ID');
  });
});

describe('parsePublishLine', () => {
  it('parses a full line', () => {
    const line = JSON.stringify({ id: 'a1', body: { url: 'https://x' }, delay: '10m', priority: 3, lane: 'fast' });
    expect(parsePublishLine(line, 1)).toEqual({
      lane: 'fast',
      body: { url: 'https://x' },
      options: { id: 'a1', delay: '10m', at: undefined, priority: 3 },
    });
  });

  it('parses a minimal line; any JSON body, null included', () => {
    expect(parsePublishLine('{"body": 5}', 1)).toEqual({
      lane: undefined,
      body: 5,
      options: { id: undefined, delay: undefined, at: undefined, priority: undefined },
    });
    expect(parsePublishLine('{"body": null}', 1).body).toBeNull();
    expect(parsePublishLine('  {"body": "text", "at": 1700000000000}  ', 1).options.at).toBe(1_700_000_000_000);
    expect(parsePublishLine('{"body": [], "at": "2024-05-01T00:00:00Z", "delay": 100}', 1).options).toMatchObject({
      at: '2024-05-01T00:00:00Z',
      delay: 100,
    });
  });

  function lineError(text: string, lineNumber: number): InvalidMessageError {
    const err = refused(() => parsePublishLine(text, lineNumber), 'BAD_LINE');
    expect(err.message.startsWith(`line ${lineNumber}: `)).toBe(true);
    return err;
  }

  it('names the line in every error', () => {
    expect(lineError('{"body": 1,', 7).message).toMatch(/^line 7: not valid JSON \(/);
    expect(lineError('', 12).message).toMatch(/^line 12: not valid JSON/);
    expect(lineError('{"dealy": 5, "body": 1}', 1_000_000).message).toMatch(/^line 1000000: /);
  });

  it('keeps the JSON error as the cause', () => {
    expect(lineError('nope', 3).cause).toBeInstanceOf(SyntaxError);
  });

  it.each([['[1,2]'], ['"body"'], ['42'], ['null'], ['true']])('refuses the non-object %p', (text) => {
    expect(lineError(text, 2).message).toBe('line 2: expected a JSON object');
  });

  it('requires a body', () => {
    expect(lineError('{"lane": "fast"}', 4).message).toBe('line 4: "body" is required');
    expect(lineError('{}', 4).message).toBe('line 4: "body" is required');
  });

  it('refuses an unknown key, such as a typo of delay', () => {
    const err = lineError('{"body": 1, "dealy": "5m"}', 9);
    expect(err.message).toContain('unknown key "dealy"');
    expect(err.message).toContain('allowed: id, key, body, delay, at, priority, lane');
    expect(lineError('{"body": 1, "headers": {}}', 9).message).toContain('unknown key "headers"');
    expect(lineError('{"body": 1, "__proto__": {}}', 9).message).toContain('unknown key "__proto__"');
  });

  it.each<[string, string]>([
    ['{"body": 1, "lane": 5}', '"lane" must be a string'],
    ['{"body": 1, "lane": null}', '"lane" must be a string'],
    ['{"body": 1, "delay": true}', '"delay" must be a number (ms) or a duration string'],
    ['{"body": 1, "delay": [1]}', '"delay" must be a number (ms) or a duration string'],
    ['{"body": 1, "at": {}}', '"at" must be an ISO-8601 string or epoch ms'],
    ['{"body": 1, "priority": "3"}', '"priority" must be a number'],
    ['{"body": 1, "id": 42}', '"id" must be a string'],
  ])('refuses wrong types: %s', (text, reason) => {
    expect(lineError(text, 5).message).toBe(`line 5: ${reason}`);
  });
});
