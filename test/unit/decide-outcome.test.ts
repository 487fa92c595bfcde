import type { BackoffConfig, DelayConfig, LaneConfig } from '../../src/config/types';
import { backoffBounds } from '../../src/delay/backoff';
import { maxDelayMs } from '../../src/delay/routing';
import {
  BadBodyError,
  HandlerTimeoutError,
  InvalidMessageError,
  UnrecoverableError,
} from '../../src/errors';
import { decideOutcome, type DecisionContext, type DecisionInput, type HandlerResult, type Settlement } from '../../src/worker/decide-outcome';
import { laneConfig } from '../helpers/lane-config';

const NOW = 1_700_000_000_000;

function lane(name: string, maxPriority: number, backoff: Partial<BackoffConfig> = {}, maxAttempts = 3): LaneConfig {
  return laneConfig({
    name,
    concurrency: 1,
    maxPriority,
    retry: { maxAttempts, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 'full', ...backoff } },
  });
}

const fast = lane('fast', 9);
const slow = lane('slow', 3);
const delay: DelayConfig = { unitMs: 1000, levels: 10, tolerance: 0, queueType: 'classic', holdMs: 0 }; // max 1023 s

function ctx(overrides: Partial<DecisionContext> = {}): DecisionContext {
  return {
    lanes: new Map([
      ['fast', fast],
      ['slow', slow],
    ]),
    delay,
    now: NOW,
    ...overrides,
  };
}

function input(overrides: Partial<DecisionInput> = {}): DecisionInput {
  return {
    id: 'msg-1',
    lane: fast,
    body: Buffer.from('original'),
    priority: 5,
    generation: 1_600_000_000_000.5,
    runs: 2,
    attempt: 0,
    userHeaders: { 'x-user': 'kept' },
    ...overrides,
  };
}

const ok = (value: unknown): HandlerResult => ({ ok: true, value });
const failed = (error: unknown): HandlerResult => ({ ok: false, error });

function expectKind<K extends Settlement['kind']>(s: Settlement, kind: K): Settlement & { kind: K } {
  expect(s.kind).toBe(kind);
  return s as Settlement & { kind: K };
}

describe('decideOutcome: done', () => {
  it.each([[undefined], [null], [{ done: true }]])('%p → done', (value) => {
    expect(decideOutcome(ok(value), input(), ctx())).toEqual({ kind: 'done' });
  });
});

describe('decideOutcome: reschedule', () => {
  it('keeps the id, lane, body, priority and headers; runs + 1, attempt back to 0', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: { delay: 5000 } }), input({ attempt: 2 }), ctx()), 'rescheduled');
    expect(s.message).toEqual({
      id: 'msg-1',
      lane: 'fast',
      body: Buffer.from('original'),
      priority: 5,
      dueAt: NOW + 5000,
      delayMs: 5000,
      runs: 3,
      attempt: 0,
      generation: 1_600_000_000_000.5,
      headers: { 'x-user': 'kept' },
    });
  });

  it('accepts a duration string', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: { delay: '90s' } }), input(), ctx()), 'rescheduled');
    expect(s.message.delayMs).toBe(90_000);
    expect(s.message.dueAt).toBe(NOW + 90_000);
  });

  it('delay 0 is allowed', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: { delay: 0 } }), input(), ctx()), 'rescheduled');
    expect(s.message.delayMs).toBe(0);
  });

  it.each<[string, unknown, Buffer]>([
    ['an object as JSON', { a: 1, b: [true] }, Buffer.from('{"a":1,"b":[true]}')],
    ['a string as UTF-8', 'héllo ✓', Buffer.from('héllo ✓', 'utf8')],
    ['a Buffer as is', Buffer.from([0, 255, 1]), Buffer.from([0, 255, 1])],
    ['a number as JSON', 42, Buffer.from('42')],
    ['null as JSON', null, Buffer.from('null')],
  ])('encodes a new body: %s', (_what, body, expected) => {
    const s = expectKind(decideOutcome(ok({ reschedule: { delay: 1000, body } }), input(), ctx()), 'rescheduled');
    expect(s.message.body.equals(expected)).toBe(true);
  });

  it('passes a new Buffer body through unchanged (same bytes object)', () => {
    const body = Buffer.from('new');
    const s = expectKind(decideOutcome(ok({ reschedule: { delay: 1000, body } }), input(), ctx()), 'rescheduled');
    expect(s.message.body).toBe(body);
  });

  describe('a new body for a json lane is encoded as publish encodes it', () => {
    const jsonLane = laneConfig({ name: 'orders', concurrency: 1, format: 'json' });
    const jsonCtx = () => ctx({ lanes: new Map([['fast', fast], ['orders', jsonLane]]) });

    it('a string becomes a JSON string (it would not parse as raw UTF-8 text)', () => {
      const s = expectKind(decideOutcome(ok({ reschedule: { delay: 1000, body: 'héllo' } }), input({ lane: jsonLane }), jsonCtx()), 'rescheduled');
      expect(s.message.body.toString('utf8')).toBe('"héllo"');
      expect(JSON.parse(s.message.body.toString('utf8'))).toBe('héllo');
    });

    it('moving a string body to a json lane encodes it for that lane', () => {
      const s = expectKind(decideOutcome(ok({ reschedule: { delay: 1000, lane: 'orders', body: 'x' } }), input(), jsonCtx()), 'rescheduled');
      expect(s.message.body.toString('utf8')).toBe('"x"');
    });

    it('bytes that are not JSON go to dead as a bad outcome, with the reason', () => {
      const s = expectKind(
        decideOutcome(ok({ reschedule: { delay: 1000, body: Buffer.from('{not json') } }), input({ lane: jsonLane }), jsonCtx()),
        'dead',
      );
      expect(s.info.code).toBe('BAD_OUTCOME');
      expect(s.info.message).toMatch(/not valid JSON.*"json"/);
    });

    it('a raw lane keeps a string as UTF-8 text', () => {
      const s = expectKind(decideOutcome(ok({ reschedule: { delay: 1000, body: 'plain' } }), input(), jsonCtx()), 'rescheduled');
      expect(s.message.body.toString('utf8')).toBe('plain');
    });
  });

  it('moves to another lane and changes priority', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: { delay: 1000, lane: 'slow', priority: 2 } }), input(), ctx()), 'rescheduled');
    expect(s.message.lane).toBe('slow');
    expect(s.message.priority).toBe(2);
  });

  it('clamps the kept priority to the new lane\'s maximum', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: { delay: 1000, lane: 'slow' } }), input({ priority: 7 }), ctx()), 'rescheduled');
    expect(s.message.priority).toBe(3);
  });

  it('takes priority 0 explicitly', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: { priority: 0 } }), input({ priority: 7 }), ctx()), 'rescheduled');
    expect(s.message.priority).toBe(0);
  });

  it('`at` in the future gives the remaining delay', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: { at: new Date(NOW + 60_000) } }), input(), ctx()), 'rescheduled');
    expect(s.message.delayMs).toBe(60_000);
    expect(s.message.dueAt).toBe(NOW + 60_000);
  });

  it.each([[NOW - 60_000], [new Date(NOW - 1)], [new Date(0).toISOString()]])('`at` in the past (%p) means delay 0', (at) => {
    const s = expectKind(decideOutcome(ok({ reschedule: { at } }), input(), ctx()), 'rescheduled');
    expect(s.message.delayMs).toBe(0);
    expect(s.message.dueAt).toBeLessThanOrEqual(NOW);
  });

  it('wins over done when both are given', () => {
    expect(decideOutcome(ok({ done: true, reschedule: { delay: 1000 } }), input(), ctx()).kind).toBe('rescheduled');
  });

  it('an empty reschedule runs it again now, same lane and priority', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: {} }), input(), ctx()), 'rescheduled');
    expect(s.message).toMatchObject({ lane: 'fast', priority: 5, delayMs: 0, dueAt: NOW, runs: 3, generation: 1_600_000_000_000.5 });
  });
});

describe('decideOutcome: invalid outcomes are dead with BAD_OUTCOME', () => {
  it.each<[string, unknown]>([
    ['negative delay', { reschedule: { delay: -1 } }],
    ['NaN delay', { reschedule: { delay: NaN } }],
    ['unparseable delay', { reschedule: { delay: 'soon' } }],
    ['unknown lane', { reschedule: { delay: 1000, lane: 'nope' } }],
    ['delay past max', { reschedule: { delay: maxDelayMs(delay) + 1 } }],
    ['at past max', { reschedule: { at: NOW + maxDelayMs(delay) + 1 } }],
    ['priority above lane max', { reschedule: { delay: 1000, priority: 10 } }],
    ['priority above the new lane max', { reschedule: { delay: 1000, lane: 'slow', priority: 4 } }],
    ['negative priority', { reschedule: { delay: 1000, priority: -1 } }],
    ['fractional priority', { reschedule: { delay: 1000, priority: 1.5 } }],
    ['both delay and at', { reschedule: { delay: 1000, at: NOW + 1000 } }],
    ['invalid at', { reschedule: { at: 'not a date' } }],
    ['non-object reschedule', { reschedule: 5000 }],
    ['null reschedule', { reschedule: null }],
    ['unencodable body', { reschedule: { delay: 1000, body: 10n } }],
  ])('%s', (_what, value) => {
    const s = expectKind(decideOutcome(ok(value), input({ attempt: 1 }), ctx()), 'dead');
    expect(s.info.code).toBe('BAD_OUTCOME');
    expect(s.info.lane).toBe('fast');
    expect(s.info.attempts).toBe(2);
    expect(s.info.message).toMatch(/^invalid reschedule outcome: /);
  });

  it('names the reason', () => {
    const s = expectKind(decideOutcome(ok({ reschedule: { lane: 'nope' } }), input(), ctx()), 'dead');
    expect(s.info.message).toContain('unknown lane "nope"');
  });

  it.each<[unknown, string]>([
    [42, 'a number'],
    ['done', 'a string'],
    [true, 'a boolean'],
    [{ foo: 1 }, 'an object with keys [foo]'],
    [{ done: false }, 'an object with keys [done]'],
    [[], 'an array'],
    [() => undefined, 'a function'],
  ])('other return value %p', (value, described) => {
    const s = expectKind(decideOutcome(ok(value), input(), ctx()), 'dead');
    expect(s.info.code).toBe('BAD_OUTCOME');
    expect(s.info.message).toContain(`handler returned ${described}`);
    expect(s.info.attempts).toBe(1);
  });
});

describe('decideOutcome: failures', () => {
  it('retries a thrown Error with attempt + 1 and a backoff delay; runs, body, priority, headers kept', () => {
    for (const [attempt, r] of [
      [0, 0],
      [0, 0.5],
      [1, 0.999],
    ] as const) {
      const s = expectKind(decideOutcome(failed(new Error('boom')), input({ attempt }), ctx({ random: () => r })), 'retried');
      const [min, max] = backoffBounds(attempt + 1, fast.retry.backoff);
      expect(s.message.delayMs).toBeGreaterThanOrEqual(min);
      expect(s.message.delayMs).toBeLessThanOrEqual(max);
      expect(s.message).toEqual({
        id: 'msg-1',
        lane: 'fast',
        body: Buffer.from('original'),
        priority: 5,
        dueAt: NOW + s.message.delayMs,
        delayMs: s.message.delayMs,
        runs: 2,
        attempt: attempt + 1,
        generation: 1_600_000_000_000.5,
        headers: { 'x-user': 'kept' },
      });
    }
  });

  it('uses the lane\'s backoff for the failure count', () => {
    const noJitter = lane('fast', 9, { jitter: 'none', initialMs: 1000, factor: 3 }, 10);
    const delays = [0, 1, 2, 3].map((attempt) => {
      const s = expectKind(decideOutcome(failed(new Error('x')), input({ lane: noJitter, attempt }), ctx()), 'retried');
      return s.message.delayMs;
    });
    expect(delays).toEqual([1000, 3000, 9000, 27_000]);
  });

  it('retries non-Error throws too', () => {
    expect(decideOutcome(failed('a string'), input(), ctx({ random: () => 0 })).kind).toBe('retried');
    expect(decideOutcome(failed(undefined), input(), ctx({ random: () => 0 })).kind).toBe('retried');
  });

  it('retries a HandlerTimeoutError', () => {
    const s = expectKind(decideOutcome(failed(new HandlerTimeoutError(30_000)), input(), ctx({ random: () => 0.5 })), 'retried');
    expect(s.message.attempt).toBe(1);
  });

  it('dead-letters when failures reach maxAttempts, with the attempts count and HANDLER_ERROR', () => {
    // maxAttempts 3: failures 1 and 2 retry, the third is dead.
    expect(decideOutcome(failed(new Error('x')), input({ attempt: 0 }), ctx()).kind).toBe('retried');
    expect(decideOutcome(failed(new Error('x')), input({ attempt: 1 }), ctx()).kind).toBe('retried');
    const s = expectKind(decideOutcome(failed(new Error('still broken')), input({ attempt: 2 }), ctx()), 'dead');
    expect(s.info).toEqual({ code: 'HANDLER_ERROR', message: 'still broken', lane: 'fast', attempts: 3 });
  });

  it('keeps a timeout\'s code when it exhausts the attempts', () => {
    const s = expectKind(decideOutcome(failed(new HandlerTimeoutError(5)), input({ attempt: 2 }), ctx()), 'dead');
    expect(s.info.code).toBe('HANDLER_TIMEOUT');
  });

  it('maxAttempts 1 dead-letters the first failure', () => {
    const once = lane('fast', 9, {}, 1);
    const s = expectKind(decideOutcome(failed(new Error('x')), input({ lane: once }), ctx()), 'dead');
    expect(s.info.attempts).toBe(1);
  });

  it('dead-letters an UnrecoverableError at once with its code', () => {
    const s = expectKind(decideOutcome(failed(new UnrecoverableError('no such user')), input(), ctx()), 'dead');
    expect(s.info).toEqual({ code: 'UNRECOVERABLE', message: 'no such user', lane: 'fast', attempts: 1 });
    const custom = expectKind(decideOutcome(failed(new UnrecoverableError('gone', { code: 'GONE' })), input(), ctx()), 'dead');
    expect(custom.info.code).toBe('GONE');
  });

  it('dead-letters a BadBodyError at once', () => {
    const s = expectKind(decideOutcome(failed(new BadBodyError('not JSON')), input(), ctx()), 'dead');
    expect(s.info).toMatchObject({ code: 'BAD_BODY', message: 'not JSON', attempts: 1 });
  });

  it('retries other OrbitErrors but reports their code when they exhaust the attempts', () => {
    expect(decideOutcome(failed(new InvalidMessageError('x')), input(), ctx()).kind).toBe('retried');
    const s = expectKind(decideOutcome(failed(new InvalidMessageError('x')), input({ attempt: 2 }), ctx()), 'dead');
    expect(s.info.code).toBe('INVALID_MESSAGE');
  });

  it('clamps the retry delay to what the delay levels can hold', () => {
    const long = lane('fast', 9, { jitter: 'none', initialMs: 3_600_000, maxMs: 86_400_000 });
    const s = expectKind(decideOutcome(failed(new Error('x')), input({ lane: long }), ctx()), 'retried');
    expect(s.message.delayMs).toBe(maxDelayMs(delay));
    expect(s.message.dueAt).toBe(NOW + maxDelayMs(delay));
  });
});
