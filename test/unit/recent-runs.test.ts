import { RecentRuns, runKey } from '../../src/worker/recent-runs';

const incoming = (over: Partial<{ id: string; runs: number; attempt: number; generation: number }> = {}) => {
  const m = { id: 'x', runs: 3, attempt: 0, generation: 1_700_000_000_000.001, ...over };
  return { message: { id: m.id, runs: m.runs, attempt: m.attempt }, generation: m.generation };
};

describe('runKey', () => {
  test('names a run by lane, id, generation, runs and attempt: a change in any one is another run', () => {
    const base = runKey('a', incoming());
    expect(base).toBeDefined();
    expect(runKey('a', incoming())).toBe(base);
    const others = [
      runKey('b', incoming()),
      runKey('a', incoming({ id: 'y' })),
      runKey('a', incoming({ generation: 1_700_000_000_000.002 })),
      runKey('a', incoming({ runs: 4 })),
      runKey('a', incoming({ attempt: 1 })),
    ];
    expect(new Set([base, ...others]).size).toBe(others.length + 1);
  });

  test('a message without a generation or an id cannot be named exactly: never taken for a copy', () => {
    expect(runKey('a', incoming({ generation: 0 }))).toBeUndefined();
    expect(runKey('a', incoming({ id: '' }))).toBeUndefined();
  });

  test('a separator inside an id does not make two runs one', () => {
    // Under `id, runs` order these two would read the same: "x\0" + "3" and "x" + "\03".
    const keys = [runKey('a', incoming({ id: 'x\u0000', runs: 3 })), runKey('a', incoming({ id: 'x', runs: 3 })), runKey('a', incoming({ id: '\u0000x' }))];
    expect(new Set(keys).size).toBe(3);
    expect(keys[0]!.endsWith('\u0000x\u0000')).toBe(true);
  });
});

const DUE = 1_700_000_060_000;

describe('RecentRuns', () => {
  test('remembers a settled run for its window, then forgets it', () => {
    const r = new RecentRuns(10, 1000);
    r.add('k', DUE, true, 5000);
    expect(r.copyOf('k', DUE, 5000)).toBe('exact');
    expect(r.copyOf('k', DUE, 6000)).toBe('exact');
    expect(r.copyOf('k', DUE, 6001)).toBeUndefined();
    expect(r.copyOf('other', DUE, 5000)).toBeUndefined();
  });

  test('the same run due at another time is a fork after a reschedule or done, and a run of its own after a retry', () => {
    const r = new RecentRuns(10, 60_000);
    r.add('moved-on', DUE, true, 1000);
    r.add('retried', DUE, false, 1000);
    expect(r.copyOf('moved-on', DUE + 2500, 2000)).toBe('fork');
    expect(r.copyOf('moved-on', DUE, 2000)).toBe('exact');
    // What `orbit dlq replay` sends back: attempt 0 again, due when sent. Its key can match
    // only an attempt that was retried, and it runs.
    expect(r.copyOf('retried', DUE + 2500, 2000)).toBeUndefined();
    expect(r.copyOf('retried', DUE, 2000)).toBe('exact');
  });

  test('holds at most max runs, forgetting the oldest first', () => {
    const r = new RecentRuns(3, 60_000);
    for (let i = 0; i < 5; i++) r.add(`k${i}`, DUE, true, 1000 + i);
    expect(r.size).toBe(3);
    expect(['k0', 'k1', 'k2', 'k3', 'k4'].map((k) => r.copyOf(k, DUE, 2000))).toEqual([undefined, undefined, 'exact', 'exact', 'exact']);
  });

  test('runs past the window are dropped as new ones come', () => {
    const r = new RecentRuns(100, 1000);
    for (let i = 0; i < 50; i++) r.add(`old${i}`, DUE, true, 0);
    r.add('new', DUE, true, 5000);
    expect(r.size).toBe(1);
    expect(r.copyOf('new', DUE, 5000)).toBe('exact');
  });

  test('a run settled again counts from its latest settling, with its latest due time', () => {
    const r = new RecentRuns(2, 1000);
    r.add('a', DUE, false, 0);
    r.add('b', DUE, true, 10);
    // A replay of 'a' ran and was rescheduled.
    r.add('a', DUE + 5000, true, 900);
    r.add('c', DUE, true, 950);
    // 'b' was the oldest: it went; 'a' stayed, as its latest settling.
    expect(r.copyOf('a', DUE + 5000, 1800)).toBe('exact');
    expect(r.copyOf('a', DUE, 1800)).toBe('fork');
    expect(r.copyOf('b', DUE, 950)).toBeUndefined();
  });

  test('the ring wraps without losing track: a slot reused by a newer run does not answer for an older key', () => {
    const r = new RecentRuns(3, 60_000);
    for (let i = 0; i < 10; i++) r.add(`k${i % 4}`, DUE + i, true, 1000 + i);
    // Slots hold k3 (i=7), k0 (i=8), k1 (i=9); k2 (last at i=6) is gone.
    expect(r.size).toBe(3);
    expect(['k0', 'k1', 'k2', 'k3'].map((k, j) => r.copyOf(k, DUE + [8, 9, 6, 7][j]!, 2000))).toEqual(['exact', 'exact', undefined, 'exact']);
  });
});
