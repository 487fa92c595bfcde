import { RecentRuns, runKey } from '../../src/worker/recent-runs';

const incoming = (over: Partial<{ id: string; runs: number; attempt: number; generation: number; dueAtMs: number }> = {}) => {
  const m = { id: 'x', runs: 3, attempt: 0, generation: 1_700_000_000_000.001, dueAtMs: 1_700_000_060_000, ...over };
  return { message: { id: m.id, runs: m.runs, attempt: m.attempt }, generation: m.generation, dueAtMs: m.dueAtMs };
};

describe('runKey', () => {
  test('names a run by lane, id, generation, runs, attempt and due time: a change in any one is another run', () => {
    const base = runKey('a', incoming());
    expect(base).toBeDefined();
    expect(runKey('a', incoming())).toBe(base);
    const others = [
      runKey('b', incoming()),
      runKey('a', incoming({ id: 'y' })),
      runKey('a', incoming({ generation: 1_700_000_000_000.002 })),
      runKey('a', incoming({ runs: 4 })),
      runKey('a', incoming({ attempt: 1 })),
      runKey('a', incoming({ dueAtMs: 1_700_000_060_001 })),
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

describe('RecentRuns', () => {
  test('remembers a settled run for its window, then forgets it', () => {
    const r = new RecentRuns(10, 1000);
    r.add('k', 5000);
    expect(r.has('k', 5000)).toBe(true);
    expect(r.has('k', 6000)).toBe(true);
    expect(r.has('k', 6001)).toBe(false);
    expect(r.has('other', 5000)).toBe(false);
  });

  test('holds at most max runs, forgetting the oldest first', () => {
    const r = new RecentRuns(3, 60_000);
    for (let i = 0; i < 5; i++) r.add(`k${i}`, 1000 + i);
    expect(r.size).toBe(3);
    expect(['k0', 'k1', 'k2', 'k3', 'k4'].map((k) => r.has(k, 2000))).toEqual([false, false, true, true, true]);
  });

  test('runs past the window are dropped as new ones come', () => {
    const r = new RecentRuns(100, 1000);
    for (let i = 0; i < 50; i++) r.add(`old${i}`, 0);
    r.add('new', 5000);
    expect(r.size).toBe(1);
    expect(r.has('new', 5000)).toBe(true);
  });

  test('a run settled again counts from its latest settling', () => {
    const r = new RecentRuns(2, 1000);
    r.add('a', 0);
    r.add('b', 10);
    r.add('a', 900);
    r.add('c', 950);
    // 'b' was the oldest: it went, 'a' stayed.
    expect(r.has('a', 1800)).toBe(true);
    expect(r.has('b', 950)).toBe(false);
  });
});
