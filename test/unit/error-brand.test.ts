/**
 * Errors a handler throws are recognised by their registered-symbol brand, not by class
 * identity: a handler that resolved a second copy of orbit throws that copy's classes.
 * The second copy here is a fresh instance of src/errors.ts (jest.isolateModules), a
 * module with classes of its own, exactly as a second install would have.
 */
import type { LaneConfig } from '../../src/config/types';
import * as ours from '../../src/errors';
import { decideOutcome, type DecisionContext, type DecisionInput } from '../../src/worker/decide-outcome';
import { laneConfig } from '../helpers/lane-config';

function secondCopy(): typeof ours {
  let copy: typeof ours | undefined;
  jest.isolateModules(() => {
    copy = jest.requireActual<typeof ours>('../../src/errors');
  });
  return copy!;
}

const other = secondCopy();

const lane: LaneConfig = laneConfig({
  name: 'a',
  concurrency: 1,
  maxPriority: 0,
  retry: { maxAttempts: 5, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 'none' } },
});
const ctx: DecisionContext = {
  lanes: new Map([['a', lane]]),
  delay: { unitMs: 1000, levels: 10, tolerance: 0, queueType: 'classic', holdMs: 0 },
  now: 1_700_000_000_000,
};
const input: DecisionInput = { id: 'm1', lane, body: Buffer.from('{}'), priority: 0, runs: 0, attempt: 0, generation: 0, userHeaders: {} };

test('the second copy really is another module: its classes fail instanceof against ours', () => {
  expect(other.UnrecoverableError).not.toBe(ours.UnrecoverableError);
  const err = new other.UnrecoverableError('x');
  expect(err instanceof ours.UnrecoverableError).toBe(false);
  expect(err instanceof ours.OrbitError).toBe(false);
});

test("an UnrecoverableError of another copy is recognised, with its code, and dead-letters on the first failure", () => {
  const err = new other.UnrecoverableError('order has no id', { code: 'ORDER_INVALID' });
  expect(ours.isUnrecoverable(err)).toBe(true);
  expect(ours.isOrbitError(err)).toBe(true);
  expect(ours.errorCode(err)).toBe('ORDER_INVALID');
  expect(decideOutcome({ ok: false, error: err }, input, ctx)).toEqual({
    kind: 'dead',
    info: { code: 'ORDER_INVALID', message: 'order has no id', lane: 'a', attempts: 1 },
  });
});

test("a handler's subclass of another copy's UnrecoverableError is recognised too", () => {
  class Gone extends other.UnrecoverableError {
    constructor() {
      super('gone', { code: 'GONE' });
    }
  }
  const settlement = decideOutcome({ ok: false, error: new Gone() }, input, ctx);
  expect(settlement).toMatchObject({ kind: 'dead', info: { code: 'GONE', attempts: 1 } });
});

test('a BadBodyError of another copy dead-letters at once', () => {
  const settlement = decideOutcome({ ok: false, error: new other.BadBodyError('not JSON') }, input, ctx);
  expect(settlement).toMatchObject({ kind: 'dead', info: { code: 'BAD_BODY', attempts: 1 } });
});

test("another copy's ordinary OrbitError keeps its code but is retried like any failure", () => {
  const err = new other.HandlerTimeoutError(50);
  expect(ours.isOrbitError(err)).toBe(true);
  expect(ours.isUnrecoverable(err)).toBe(false);
  expect(ours.errorCode(err)).toBe('HANDLER_TIMEOUT');
  expect(decideOutcome({ ok: false, error: err }, input, ctx)).toMatchObject({ kind: 'retried', message: { attempt: 1 } });
});

test('instanceof and the helpers agree on our own classes', () => {
  const err = new ours.UnrecoverableError('x', { code: 'C' });
  expect(err).toBeInstanceOf(ours.UnrecoverableError);
  expect(err).toBeInstanceOf(ours.OrbitError);
  expect(ours.isUnrecoverable(err)).toBe(true);
  expect(ours.isBadBody(err)).toBe(false);
  expect(ours.isUnrecoverable(new ours.BadBodyError('b'))).toBe(false);
  expect(ours.isUnrecoverable(new ours.ConfigError('c'))).toBe(false);
});

test('a plain error carrying a code is not mistaken for an orbit error', () => {
  const err = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  expect(ours.isOrbitError(err)).toBe(false);
  expect(ours.isUnrecoverable(err)).toBe(false);
  expect(ours.errorCode(err)).toBe('HANDLER_ERROR');
  expect(ours.isOrbitError(null)).toBe(false);
  expect(ours.isOrbitError('UNRECOVERABLE')).toBe(false);
});

test('the brand is a registered symbol on the prototype, invisible in keys, JSON and logs', () => {
  const err = new other.UnrecoverableError('x');
  expect((err as unknown as Record<symbol, unknown>)[Symbol.for('orbit.error.unrecoverable')]).toBe(true);
  expect((err as unknown as Record<symbol, unknown>)[Symbol.for('orbit.error')]).toBe(true);
  expect(Object.getOwnPropertySymbols(err)).toEqual([]);
  expect(JSON.parse(JSON.stringify(err))).toEqual({ name: 'UnrecoverableError', code: 'UNRECOVERABLE' });
});
