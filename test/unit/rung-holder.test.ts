/**
 * The rung holder's pure parts (`worker/rung-holder.ts`): when a held delivery may run, and
 * the `delay.hold` setting's checks. The holding itself runs against the broker
 * (test/integration/rung-holder.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { BUNDLE_HEADER, BUNDLE_VERSION, encodeBundle, logicalCount } from '../../src/message/bundle';
import { writeState, NO_HEADERS } from '../../src/message/headers';
import { dueOf } from '../../src/worker/rung-holder';
import { AUTO_HOLD_MS, autoHoldMs } from '../../src/config/validate';
import { configError } from '../helpers/errors';

const NOW = 1_800_000_000_000;

describe('dueOf: when a held delivery may run', () => {
  test('a plain message: the due time it carries', () => {
    const headers = writeState(NO_HEADERS, { dueAt: NOW + 4_000, runs: 2, attempt: 0, lane: 'a' });
    expect(dueOf({ content: Buffer.from('{}'), properties: { headers } } as never, NOW)).toBe(NOW + 4_000);
  });

  test("a bundle: its latest entry's due time, not the earliest its own header carries (no entry runs early)", () => {
    const entries = [NOW + 1_000, NOW + 3_500, NOW + 2_000].map((dueAt, i) => ({ id: `m${i}`, runs: 0, attempt: 0, dueAt, body: Buffer.from('x') }));
    const content = encodeBundle(entries);
    const headers = { [BUNDLE_HEADER]: BUNDLE_VERSION, 'x-orbit-lane': 'a', 'x-orbit-due': NOW + 1_000 };
    expect(dueOf({ content, properties: { headers } } as never, NOW)).toBe(NOW + 3_500);
    expect(logicalCount({ content, properties: { headers } })).toBe(3);
  });

  test('an unreadable bundle runs now: the lane reports its bad body as for any delivery', () => {
    const headers = { [BUNDLE_HEADER]: BUNDLE_VERSION, 'x-orbit-lane': 'a' };
    expect(dueOf({ content: Buffer.from([BUNDLE_VERSION, 0, 0, 0, 9]), properties: { headers } } as never, NOW)).toBe(NOW);
    expect(dueOf({ content: Buffer.from('x'), properties: { headers: { [BUNDLE_HEADER]: 99 } } } as never, NOW)).toBe(NOW);
  });
});

describe('delay.hold', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'orbit-hold-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const load = (settings: unknown, env: Record<string, string> = {}) => {
    const file = join(dir, 'orbit.json');
    writeFileSync(file, JSON.stringify(settings));
    return loadConfig({ env, cwd: dir, configFile: file });
  };

  test('read from a file or ORBIT_DELAY_HOLD', () => {
    expect(load({ delay: { hold: '2m' } }).delay.holdMs).toBe(120_000);
    expect(load({}, { ORBIT_DELAY_HOLD: '30s' }).delay.holdMs).toBe(30_000);
    expect(load({ lanes: [{ name: 'a', bundle: { max: 1 } }] }, { ORBIT_DELAY_HOLD: '0s' }).delay.holdMs).toBe(0);
  });

  test('unset: 1m when every lane is unbundled on the ladder, else off', () => {
    expect(AUTO_HOLD_MS).toBe(60_000);
    expect(load({ lanes: [{ name: 'a', bundle: { max: 1 } }, { name: 'b', bundle: { max: 1 } }] }).delay.holdMs).toBe(AUTO_HOLD_MS);
    // Bundles are on by default: a lane that does not say is bundled, and so is the config.
    expect(load({ lanes: [{ name: 'a', bundle: { max: 1 } }, { name: 'b' }] }).delay.holdMs).toBe(0);
    expect(load({ lanes: [{ name: 'a' }] }).delay.holdMs).toBe(0);
    // The binary levels are not in due order, so nothing there can be held.
    expect(load({ delay: { tolerance: 0 }, lanes: [{ name: 'a', bundle: { max: 1 } }] }).delay.holdMs).toBe(0);
    // A lane's own tolerance does not matter: the rungs are the namespace's.
    expect(load({ lanes: [{ name: 'a', bundle: { max: 1 }, tolerance: '10%' }] }).delay.holdMs).toBe(AUTO_HOLD_MS);
    expect(load({}).delay.holdMs).toBe(0);
  });

  test('autoHoldMs: the rule on its own', () => {
    const lane = (max: number) => ({ bundle: { max } });
    expect(autoHoldMs(0.02, [lane(1)])).toBe(AUTO_HOLD_MS);
    expect(autoHoldMs(0.02, [lane(1), lane(2)])).toBe(0);
    expect(autoHoldMs(0, [lane(1)])).toBe(0);
    expect(autoHoldMs(0.02, [])).toBe(0);
  });

  test('above 10m: refused, naming the key and the broker limit behind it', () => {
    const err = configError(() => load({ delay: { hold: '20m' } }));
    expect(err.path).toBe('delay.hold');
    expect(err.message).toMatch(/delay\.hold must be at most 10m \(got 20m\).*consumer_timeout/);
  });

  test('with a bundled lane: refused, naming the lanes (bundles fill worse held)', () => {
    const err = configError(() => load({ delay: { hold: '1m' }, lanes: [{ name: 'a', bundle: { max: 1 } }, { name: 'b' }, { name: 'c', bundle: { max: 50 } }] }));
    expect(err.path).toBe('delay.hold');
    expect(err.message).toMatch(/delay\.hold is for unbundled lanes, but "b", "c" are bundled: set their bundle\.max to 1/);
    expect(load({ delay: { hold: '1m' }, lanes: [{ name: 'a', bundle: { max: 1 } }] }).delay.holdMs).toBe(60_000);
  });

  test('on the binary levels (tolerance 0): refused, as a level is not in due order', () => {
    const err = configError(() => load({ delay: { hold: '1m', tolerance: 0 } }));
    expect(err.path).toBe('delay.hold');
    expect(err.message).toMatch(/delay\.hold needs the delay ladder/);
    expect(load({ delay: { hold: 0, tolerance: 0 } }).delay.holdMs).toBe(0);
  });
});
