/**
 * Crash semantics of bundles: a daemon killed with SIGKILL mid-run loses nothing; a bundle
 * redelivers whole, so duplicates are bounded by the bundles in flight.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, Scheduler } from '../../src';
import { readAuditFields } from '../helpers/audit';
import { deleteNamespace, randomNamespace, writeConfigFile } from '../helpers/broker';
import { ensureBuilt, startCli } from '../helpers/cli';
import { lanePrefetch } from '../../src/worker/lane-worker';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);
beforeAll(() => ensureBuilt(), 180_000);

/** Completed runs per id, from the audit file the handler appends to. */
function completed(file: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [id, runs] of readAuditFields(file)) {
    if (!id) continue;
    out.set(id, [...(out.get(id) ?? []), Number(runs)]);
  }
  return out;
}

/** The lane under test: 100 handlers, bundles of up to 50. */
const LANE = { concurrency: 100, bundle: { max: 50 } };

/**
 * Both layouts: the binary levels (tolerance 0) and the default ladder (2 %), whose bundled
 * lanes prefetch LADDER_HELD_MESSAGES logical messages in bundles (their deliveries stay
 * unacked while the replacements wait for company within the tolerance).
 */
const LAYOUTS = [
  { layout: 'binary levels (tolerance 0)', delay: { unit: '1s', levels: 4, tolerance: 0 }, prefetch: lanePrefetch(LANE, 0) },
  { layout: 'the default ladder (tolerance 2 %)', delay: { unit: '1s', levels: 4 }, prefetch: lanePrefetch(LANE, 0.02) },
];

test.each(LAYOUTS)('a bundled lane killed mid-run loses nothing: $layout', async ({ delay, prefetch }) => {
  const dir = mkdtempSync(join(tmpdir(), 'orbit-bundle-kill-'));
  const ns = randomNamespace('bkill');
  const audit = join(dir, 'audit.log');
  const handler = join(dir, 'handler.js');
  writeFileSync(
    handler,
    `const fs = require('node:fs');
exports.handle = async (m) => {
  await new Promise((r) => setTimeout(r, 5));
  fs.appendFileSync(${JSON.stringify(audit)}, m.id + ' ' + m.runs + '\\n');
  return m.runs < 2 ? { reschedule: { delay: 1000 } } : undefined;
};`,
  );
  const configFile = writeConfigFile(dir, ns, {
    delay,
    log: { level: 'warn' },
    lanes: [{ name: 'b', concurrency: LANE.concurrency, handler, workAhead: false, bundle: { max: LANE.bundle.max, linger: '20ms' } }],
  });
  const config = loadConfig({ configFile, env: {} });
  const scheduler = new Scheduler({ config });
  const N = 3000;
  try {
    await Promise.all(Array.from({ length: N }, (_, i) => scheduler.publish('b', { i }, { id: `k-${i}` })));
    const first = await startCli(['start', '--config', configFile]);
    // Kill hard mid-run: bundles are in flight, unacked, and some replacements unconfirmed.
    await waitFor(() => [...completed(audit).values()].length >= N / 2, 30_000, 'half the ids started');
    first.kill('SIGKILL');
    await first.waitForExit(10_000);

    const second = await startCli(['start', '--config', configFile]);
    try {
      await waitFor(
        () => {
          const runs = completed(audit);
          return runs.size === N && [...runs.values()].every((r) => r.includes(2));
        },
        60_000,
        'every id to complete run 2',
      );
    } finally {
      second.kill('SIGTERM');
      await second.waitForExit(20_000);
    }
    const runs = completed(audit);
    // Lost = 0: every id reached its last run, and every run of each id happened.
    for (const [id, r] of runs) expect([id, [...new Set(r)].sort()]).toEqual([id, [0, 1, 2]]);
    // A duplicate is an id that ran some run number more than once. Counting audit lines instead
    // would count chains: a redelivered run 0 whose replacement was already confirmed runs 0, 1
    // and 2 again. An id can only be duplicated if it sat in a delivery the broker still held
    // unacked when the connection died, and the broker never lets more than the prefetch (bundles)
    // be unacked, each holding at most bundle.max ids: prefetch × 50 — on the binary levels
    // 2 × ceil(100 / 50) × 50 = 200; on the ladder 2,000 × 50, more than N (README, "Bundles").
    const duplicated = [...runs.values()].filter((r) => new Set(r).size < r.length).length;
    const extraRuns = [...runs.values()].reduce((n, r) => n + r.length - 3, 0);
    console.log(`bundles-kill (${delay.tolerance === 0 ? 'binary' : 'ladder'}): ${N} ids, ${duplicated} duplicated, ${extraRuns} extra runs`);
    expect(duplicated).toBeLessThanOrEqual(prefetch * LANE.bundle.max);
  } finally {
    await scheduler.close();
    await deleteNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
  }
});
