import { formatDuration, parseDuration } from '../../src/config/durations';
import { configError } from '../helpers/errors';

describe('parseDuration', () => {
  it.each<[unknown, number]>([
    [0, 0],
    [1500, 1500],
    ['1500', 1500],
    ['0', 0],
    ['250ms', 250],
    ['90s', 90_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['0.25m', 15_000],
    ['90 s', 90_000],
    ['  2h  ', 7_200_000],
    ['1m30s', 90_000],
    ['1h 30m', 5_400_000],
    ['1d2h3m4s5ms', 93_784_005],
  ])('reads %p as %p ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it('rounds fractions up to a whole millisecond', () => {
    expect(parseDuration(1.2)).toBe(2);
    expect(parseDuration('1.5')).toBe(2);
    expect(parseDuration('0.0001s')).toBe(1);
  });

  it.each<[unknown, RegExp]>([
    [-1, /must not be negative/],
    ['-5s', /must not be negative/],
    [Number.NaN, /must be a duration/],
    [Number.POSITIVE_INFINITY, /must be finite/],
    ['5x', /must be a duration.*got "5x"/],
    ['', /must not be empty/],
    ['   ', /must not be empty/],
    ['s', /must be a duration/],
    ['1e3', /must be a duration/],
    ['1.5.5s', /must be a duration/],
    ['5s1h', /largest to smallest/],
    ['1s1s', /largest to smallest/],
    ['1S', /must be a duration/],
    [{}, /got object/],
    [[], /got an array/],
    [null, /got null/],
    [true, /got boolean/],
    ['999999999999d', /too large/],
    [2 ** 60, /too large/],
  ])('refuses %p', (input, reason) => {
    const err = configError(() => parseDuration(input, 'delay.unit'));
    expect(err.message).toMatch(/^delay\.unit /);
    expect(err.message).toMatch(reason);
    expect(err.path).toBe('delay.unit');
  });

  it('names a generic subject without a path', () => {
    expect(configError(() => parseDuration('5x')).message).toMatch(/^duration must be/);
  });
});

describe('formatDuration', () => {
  it.each<[number, string]>([
    [0, '0ms'],
    [250, '250ms'],
    [1000, '1s'],
    [1500, '1s500ms'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [86_400_000, '1d'],
    [93_784_005, '1d2h3m4s5ms'],
  ])('formats %p ms as %p', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const ms of [0, 1, 999, 1000, 61_001, 3_599_999, 86_400_001, Number.MAX_SAFE_INTEGER]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });

  it('rounds a fraction up and refuses negative or non-finite input', () => {
    expect(formatDuration(0.5)).toBe('1ms');
    expect(() => formatDuration(-1)).toThrow(RangeError);
    expect(() => formatDuration(Number.NaN)).toThrow(RangeError);
  });
});
