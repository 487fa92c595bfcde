import { nextGeneration } from '../../src/message/generation';
import { CANCEL_BEFORE_HEADER, readStreamEntry, streamOffsetOf, SYNC_HEADER } from '../../src/message/tombstone-message';
import { Tombstones } from '../../src/message/tombstones';

const T = 1_800_000_000_000;
const DAY = 86_400_000;

describe('Tombstones', () => {
  test('drops the copies older than the cancel, keeps the ones after it and other ids', () => {
    const t = new Tombstones(DAY);
    t.record('a', T, T);
    expect(t.cancels('a', T - 1)).toBe(true);
    expect(t.cancels('a', 0)).toBe(true); // a copy without a generation (older orbit, other client)
    expect(t.cancels('a', T)).toBe(false); // the replacement carries the cancel's own generation
    expect(t.cancels('a', T + 0.001)).toBe(false);
    expect(t.cancels('b', 0)).toBe(false);
  });

  test('a later cancel of the same id moves the line forward, an earlier one (out of order) never back', () => {
    const t = new Tombstones(DAY);
    t.record('a', T, T);
    t.record('a', T + 5000, T);
    expect(t.cancels('a', T + 4000)).toBe(true);
    t.record('a', T + 1000, T);
    expect(t.cancels('a', T + 4000)).toBe(true);
    expect(t.size).toBe(1);
  });

  test('ignores a cancel with no usable generation', () => {
    const t = new Tombstones(DAY);
    for (const bad of [0, -1, NaN, Infinity]) t.record('a', bad, T);
    expect(t.size).toBe(0);
  });

  test('retires cancels older than the retention, oldest first, and keeps the rest', () => {
    const t = new Tombstones(DAY);
    for (let i = 0; i < 10; i++) t.record(`id${i}`, T + i * 1000, T);
    expect(t.retire(T + DAY + 4500)).toBe(5);
    expect(t.size).toBe(5);
    expect(t.cancels('id4', 0)).toBe(false);
    expect(t.cancels('id5', 0)).toBe(true);
    // A re-cancel moves the id to the back: it lives a retention from its newest cancel.
    t.record('id5', T + DAY, T);
    expect(t.retire(T + DAY + 9500)).toBe(4);
    expect(t.cancels('id5', 0)).toBe(true);
  });

  test('stays bounded under a steady churn of cancels (retired as it records)', () => {
    const t = new Tombstones(60_000);
    // 1,000 cancels a second for 10 minutes, each at its own time: about a minute's worth stays.
    for (let i = 0; i < 600_000; i++) t.record(`c${i}`, T + i, T + i);
    expect(t.size).toBeLessThanOrEqual(60_000 + 1024);
  });
});

describe('tombstone stream entries', () => {
  test('a cancel, a sync mark, and anything else', () => {
    expect(readStreamEntry({ properties: { messageId: 'a', headers: { [CANCEL_BEFORE_HEADER]: T + 0.5 } } })).toEqual({ kind: 'cancel', id: 'a', before: T + 0.5 });
    expect(readStreamEntry({ properties: { messageId: 'a', headers: { [CANCEL_BEFORE_HEADER]: BigInt(T) } } })).toEqual({ kind: 'cancel', id: 'a', before: T });
    expect(readStreamEntry({ properties: { headers: { [SYNC_HEADER]: 'tok' } } })).toEqual({ kind: 'sync', token: 'tok' });
    expect(readStreamEntry({ properties: { headers: { [SYNC_HEADER]: Buffer.from('tok') } } })).toEqual({ kind: 'sync', token: 'tok' });
    for (const properties of [{}, { messageId: 'a' }, { messageId: '', headers: { [CANCEL_BEFORE_HEADER]: T } }, { messageId: 'a', headers: { [CANCEL_BEFORE_HEADER]: 'soon' } }]) {
      expect(readStreamEntry({ properties })).toEqual({ kind: 'other' });
    }
  });

  test('the offset RabbitMQ gives a stream message', () => {
    expect(streamOffsetOf({ properties: { headers: { 'x-stream-offset': 42 } } })).toBe(42);
    expect(streamOffsetOf({ properties: { headers: { 'x-stream-offset': BigInt(7) } } })).toBe(7);
    expect(streamOffsetOf({ properties: {} })).toBeUndefined();
  });
});

describe('nextGeneration', () => {
  test('never behind the clock, and strictly increasing within the process', () => {
    const a = nextGeneration(T);
    const b = nextGeneration(T);
    const c = nextGeneration(T + 10);
    expect(a).toBeGreaterThanOrEqual(T);
    expect(b).toBeGreaterThan(a);
    expect(c).toBe(T + 10);
  });
});
