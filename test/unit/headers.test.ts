import { InvalidMessageError } from '../../src/errors';
import { encodeBody } from '../../src/message/body';
import { HEADER, readState, userHeaders, withoutBrokerHeaders, writeState } from '../../src/message/headers';
import { MAX_ERROR_HEADER_BYTES, truncateUtf8 } from '../../src/publish/message-publisher';

const NOW = 1_700_000_000_000;
const DEFAULTS = { dueAt: NOW, runs: 0, attempt: 0, lane: undefined, generation: 0 };

function state(due: unknown, runs: unknown, attempt: unknown, lane?: unknown): Record<string, unknown> {
  return { 'x-orbit-due': due, 'x-orbit-runs': runs, 'x-orbit-attempt': attempt, 'x-orbit-lane': lane };
}

describe('readState', () => {
  it('uses the header names from DESIGN.md', () => {
    expect(HEADER).toMatchObject({ due: 'x-orbit-due', runs: 'x-orbit-runs', attempt: 'x-orbit-attempt', lane: 'x-orbit-lane' });
  });

  it('reads good numbers and a lane', () => {
    expect(readState(state(NOW - 5000, 3, 2, 'fast'), NOW)).toEqual({ dueAt: NOW - 5000, runs: 3, attempt: 2, lane: 'fast', generation: 0 });
  });

  it('reads zeros as zeros, not defaults', () => {
    expect(readState(state(0, 0, 0, 'fast'), NOW)).toEqual({ dueAt: 0, runs: 0, attempt: 0, lane: 'fast', generation: 0 });
  });

  it('reads numeric strings, with surrounding whitespace', () => {
    expect(readState(state(String(NOW + 1), '7', ' 4 \n', 'slow'), NOW)).toEqual({ dueAt: NOW + 1, runs: 7, attempt: 4, lane: 'slow', generation: 0 });
  });

  it('reads Buffers (how some clients send strings)', () => {
    expect(readState(state(Buffer.from('123'), Buffer.from('9'), Buffer.from('1'), Buffer.from('bulk')), NOW)).toEqual({
      dueAt: 123,
      runs: 9,
      attempt: 1,
      lane: 'bulk',
      generation: 0,
    });
  });

  it('reads bigints (amqplib decodes 64-bit integers that way)', () => {
    expect(readState(state(BigInt(NOW), 5n, 0n), NOW)).toEqual({ dueAt: NOW, runs: 5, attempt: 0, lane: undefined, generation: 0 });
  });

  it('defaults missing or undefined headers', () => {
    expect(readState(undefined, NOW)).toEqual(DEFAULTS);
    expect(readState({}, NOW)).toEqual(DEFAULTS);
    expect(readState({ other: 1 }, NOW)).toEqual(DEFAULTS);
  });

  it.each<[string, unknown]>([
    ['negative', -1],
    ['negative string', '-5'],
    ['negative bigint', -3n],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['fraction', 1.5],
    ['fraction string', '1.5'],
    ['exponent string', '1e3'],
    ['hex string', '0x10'],
    ['empty string', ''],
    ['word', 'three'],
    ['digits then text', '12abc'],
    ['huge string', '9'.repeat(10_000)],
    ['17-digit string', '12345678901234567'],
    ['unsafe number', 2 ** 60],
    ['unsafe bigint', 2n ** 64n],
    ['object', { value: 3 }],
    ['array', [3]],
    ['boolean', true],
    ['null', null],
    ['garbage Buffer', Buffer.from([0xff, 0x00])],
  ])('treats %s as absent', (_what, value) => {
    expect(readState(state(value, value, value), NOW)).toEqual(DEFAULTS);
  });

  it('ignores a lane that is neither string nor Buffer', () => {
    expect(readState(state(1, 1, 1, 42), NOW).lane).toBeUndefined();
    expect(readState(state(1, 1, 1, { name: 'fast' }), NOW).lane).toBeUndefined();
  });

  it('defaults each header on its own', () => {
    expect(readState(state('junk', 4, -1, 'fast'), NOW)).toEqual({ dueAt: NOW, runs: 4, attempt: 0, lane: 'fast', generation: 0 });
  });
});

describe('userHeaders and withoutBrokerHeaders', () => {
  const delivered = {
    'x-orbit-due': 1,
    'x-orbit-runs': 2,
    'x-orbit-attempt': 0,
    'x-orbit-lane': 'fast',
    'x-orbit-error-code': 'OLD',
    'x-orbit-anything-new': 'x',
    'x-death': [{ count: 3, queue: 'ns.delay.0' }],
    'x-first-death-exchange': 'ns.delay.3',
    'x-first-death-queue': 'ns.delay.3',
    'x-first-death-reason': 'expired',
    'x-last-death-exchange': 'ns.delay.0',
    'x-last-death-queue': 'ns.delay.0',
    'x-last-death-reason': 'expired',
    // A quorum queue's count of returns: stale in any new copy.
    'x-delivery-count': 4,
    'trace-id': 'abc',
    'x-custom': 5,
    'x-orbitish': 'kept: not the x-orbit- prefix',
  };

  it('userHeaders keeps only the user\'s own headers', () => {
    expect(userHeaders(delivered)).toEqual({ 'trace-id': 'abc', 'x-custom': 5, 'x-orbitish': 'kept: not the x-orbit- prefix' });
  });

  it('userHeaders of nothing is empty, and it does not mutate its input', () => {
    expect(userHeaders(undefined)).toEqual({});
    const copy = { ...delivered };
    userHeaders(delivered);
    expect(delivered).toEqual(copy);
  });

  it('withoutBrokerHeaders keeps orbit\'s state but drops the death records', () => {
    const out = withoutBrokerHeaders(delivered);
    expect(Object.keys(out).sort()).toEqual(
      [
        'x-orbit-due',
        'x-orbit-runs',
        'x-orbit-attempt',
        'x-orbit-lane',
        'x-orbit-error-code',
        'x-orbit-anything-new',
        'trace-id',
        'x-custom',
        'x-orbitish',
      ].sort(),
    );
    expect(withoutBrokerHeaders(undefined)).toEqual({});
  });
});

describe('writeState', () => {
  it('adds orbit\'s state to the user headers', () => {
    expect(writeState({ 'trace-id': 'abc' }, { dueAt: 123, runs: 1, attempt: 2, lane: 'fast' })).toEqual({
      'trace-id': 'abc',
      'x-orbit-due': 123,
      'x-orbit-runs': 1,
      'x-orbit-attempt': 2,
      'x-orbit-lane': 'fast',
    });
  });

  it('orbit\'s state wins over a user header of the same name', () => {
    const out = writeState({ 'x-orbit-runs': 99 }, { dueAt: 1, runs: 0, attempt: 0, lane: 'fast' });
    expect(out['x-orbit-runs']).toBe(0);
  });

  it('round-trips through readState', () => {
    const written = { dueAt: NOW + 42, runs: 12, attempt: 3, lane: 'slow', generation: NOW - 1000.25 };
    expect(readState(writeState({}, written), NOW)).toEqual(written);
  });

  it('writes no generation for a message that has none (0), and reads a missing or bad one as 0', () => {
    expect(writeState({}, { dueAt: 1, runs: 0, attempt: 0, lane: 'fast', generation: 0 })).not.toHaveProperty('x-orbit-gen');
    for (const bad of [-5, 'x', NaN, Infinity, null]) expect(readState({ 'x-orbit-gen': bad }, NOW).generation).toBe(0);
    expect(readState({ 'x-orbit-gen': BigInt(NOW) }, NOW).generation).toBe(NOW);
  });
});

describe('encodeBody', () => {
  it('passes a Buffer through as the same object', () => {
    const buf = Buffer.from([1, 2, 3]);
    expect(encodeBody(buf)).toBe(buf);
  });

  it('takes a Uint8Array view without copying the wrong bytes', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const view = backing.subarray(2, 5);
    const out = encodeBody(view);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect([...out]).toEqual([1, 2, 3]);
  });

  it('encodes a string as UTF-8 (not JSON)', () => {
    expect(encodeBody('héllo 🌍').equals(Buffer.from('héllo 🌍', 'utf8'))).toBe(true);
    expect(encodeBody('').length).toBe(0);
    expect(encodeBody('"quoted"').toString()).toBe('"quoted"');
  });

  it('for a json lane, encodes a string as a JSON string and refuses bytes that are not JSON', () => {
    expect(encodeBody('hello', 'json').toString()).toBe('"hello"');
    expect(encodeBody('"quoted"', 'json').toString()).toBe('"\\"quoted\\""');
    expect(encodeBody({ a: 1 }, 'json').toString()).toBe('{"a":1}');
    const bytes = Buffer.from('{"ok":true}');
    expect(encodeBody(bytes, 'json')).toBe(bytes);
    let err: unknown;
    try {
      encodeBody(Buffer.from('not json'), 'json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidMessageError);
    expect((err as InvalidMessageError).code).toBe('BAD_BODY');
    expect(encodeBody(Buffer.from('not json'), 'raw').toString()).toBe('not json');
  });

  it.each<[unknown, string]>([
    [{ a: 1, b: 'x' }, '{"a":1,"b":"x"}'],
    [[1, 'two', null], '[1,"two",null]'],
    [42, '42'],
    [true, 'true'],
    [null, 'null'],
    [new Date(0), '"1970-01-01T00:00:00.000Z"'],
    [{ toJSON: () => 'custom' }, '"custom"'],
  ])('encodes %p as JSON %p', (body, json) => {
    expect(encodeBody(body).toString('utf8')).toBe(json);
  });

  it.each<[string, unknown]>([
    ['a BigInt', 10n],
    ['an object holding a BigInt', { n: 1n }],
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a cycle', (() => { const o: Record<string, unknown> = {}; o.self = o; return o; })()],
  ])('refuses %s with InvalidMessageError BAD_BODY', (_what, body) => {
    let err: unknown;
    try {
      encodeBody(body);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidMessageError);
    expect((err as InvalidMessageError).code).toBe('BAD_BODY');
  });
});

describe('truncateUtf8', () => {
  const SUFFIX = '…[truncated]';

  it('returns text within the limit unchanged', () => {
    expect(truncateUtf8('short', 1024)).toBe('short');
    expect(truncateUtf8('', 0)).toBe('');
    const exact = 'é'.repeat(512); // exactly 1024 bytes
    expect(truncateUtf8(exact, 1024)).toBe(exact);
  });

  it('cuts ASCII to exactly the limit, marker included', () => {
    const out = truncateUtf8('x'.repeat(5000), MAX_ERROR_HEADER_BYTES);
    expect(Buffer.byteLength(out)).toBe(MAX_ERROR_HEADER_BYTES);
    expect(out.endsWith(SUFFIX)).toBe(true);
    expect(out.startsWith('x'.repeat(1000))).toBe(true);
  });

  const samples: [string, string][] = [
    ['emoji (4 bytes)', '😀'.repeat(400)],
    ['CJK (3 bytes)', '漢字テスト'.repeat(200)],
    ['2-byte Latin', 'é'.repeat(1000)],
    ['mixed', 'a😀b漢é'.repeat(200)],
    ['ZWJ family emoji', '👨‍👩‍👧‍👦'.repeat(100)],
  ];

  it.each(samples)('never exceeds the limit nor splits a character: %s', (_what, text) => {
    for (let max = 0; max <= 80; max++) {
      const out = truncateUtf8(text, max);
      const bytes = Buffer.from(out, 'utf8');
      expect(bytes.length).toBeLessThanOrEqual(max);
      // No replacement characters: every cut fell on a code point boundary.
      expect(out).not.toContain('\uFFFD');
      // What is kept is a prefix of the original.
      const kept = out.endsWith(SUFFIX) ? out.slice(0, -SUFFIX.length) : out;
      expect(text.startsWith(kept)).toBe(true);
      // Nothing more could have been kept: the next code point would not fit.
      if (out.endsWith(SUFFIX)) {
        const next = String.fromCodePoint(text.codePointAt(kept.length)!);
        expect(Buffer.byteLength(kept + next + SUFFIX)).toBeGreaterThan(max);
      }
    }
    const big = truncateUtf8(text, MAX_ERROR_HEADER_BYTES);
    expect(Buffer.byteLength(big)).toBeLessThanOrEqual(MAX_ERROR_HEADER_BYTES);
    expect(Buffer.byteLength(big)).toBeGreaterThan(MAX_ERROR_HEADER_BYTES - 4);
    expect(big).not.toContain('\uFFFD');
  });

  it('keeps the marker once the limit has room for it', () => {
    expect(truncateUtf8('😀'.repeat(10), Buffer.byteLength(SUFFIX))).toBe(SUFFIX);
    expect(truncateUtf8('😀'.repeat(10), Buffer.byteLength(SUFFIX) + 4)).toBe(`😀${SUFFIX}`);
    expect(truncateUtf8('😀'.repeat(10), Buffer.byteLength(SUFFIX) + 3)).toBe(SUFFIX);
  });

  it('cuts without the marker when the limit is smaller than the marker', () => {
    expect(truncateUtf8('abcdefghijklmnopqrstuvwxyz', 5)).toBe('abcde');
    expect(truncateUtf8('😀😀😀😀😀😀', 9)).toBe('😀😀');
    expect(truncateUtf8('😀😀', 3)).toBe('');
  });
});
