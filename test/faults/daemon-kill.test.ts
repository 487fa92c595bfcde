/**
 * Fault: the daemon is SIGKILLed while thousands of messages are in flight and being
 * rescheduled through the delay levels; a new daemon finishes the work.
 *
 * The promise: nothing is lost (every message completes every run), and the only duplicates
 * are messages that were in flight at the kill — handlers running, or finished with their
 * replacement published but the original not acked yet. Those come back from the broker
 * flagged `redelivered`. There can be no more of them than the prefetch (= concurrency), and
 * each can repeat each of its later runs once (both copies go on rescheduling). Run twice:
 * through the lane (no `delay.hold`), and with the holder unbundled lanes get by default,
 * whose own prefetch adds to the bound and whose returned messages may come back unflagged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src';
import { AUTO_HOLD_MS } from '../../src/config/validate';
import { HOLD_PREFETCH } from '../../src/worker/rung-holder';
import { AMQP_URL, deleteNamespace, randomNamespace } from '../helpers/broker';
import { type CliProcess, ensureBuilt, startCli } from '../helpers/cli';
import { completedRuns, describeFaults, expectIds, firstStartAfter, readAuditFile, report, result, tally } from './audit';
import { AUDIT_HANDLER, depthsAt, publishAll, topologyQueues, writeConfig } from './util';
import { sleep, waitFor } from '../helpers/wait';

const MESSAGES = 3000;
const TOTAL = 3; // runs per message: runs 0 and 1 reschedule, run 2 is done
const CONCURRENCY = 100;
const LEVELS = 6;

describeFaults('fault: daemon SIGKILL mid-run', () => {
  let dir: string;
  const namespaces: string[] = [];
  const processes: CliProcess[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'orbit-fault-kill-'));
  }, 180_000);

  afterAll(async () => {
    for (const p of processes.splice(0)) await p.destroy();
    for (const ns of namespaces) await deleteNamespace(ns).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  // `lane`: no delay.hold, so every run comes from the lane queue and a duplicate is a broker
  // redelivery. `held`: the default for unbundled lanes (delay.hold 1m), so most runs come
  // from the 500 ms rung the daemon holds; a held message that ran before the kill goes back to
  // that rung with the connection, and the second daemon gets it from there, held again
  // (redelivered) or expired into the lane (a new delivery, not flagged).
  test.each([
    ['lane', '0s'],
    ['held', null],
  ] as const)(`${MESSAGES} messages × ${TOTAL} runs: SIGKILL at ~1/3, a new daemon finishes; lost 0, duplicates only for what was in flight (%s)`, async (how, hold) => {
    const ns = randomNamespace('fkill');
    namespaces.push(ns);
    const audit = join(dir, `audit-${how}.log`);
    const configFile = writeConfig(dir, {
      namespace: ns,
      amqp: { url: AMQP_URL, reconnect: '500ms' },
      // 100 ms resolution; every reschedule waits 500 ms in one rung.
      delay: { unit: '100ms', levels: LEVELS, ...(hold === null ? {} : { hold }) },
      log: { level: 'info' },
      http: { port: 0 },
      shutdown: { timeout: '10s' },
      // Unbundled, for the tight bound below (at most `concurrency` messages repeat); a bundled
      // lane's crash repeats whole prefetched bundles: test/integration/bundles-kill.test.ts.
      lanes: [{ name: 'work', concurrency: CONCURRENCY, handler: AUDIT_HANDLER, timeout: '30s', workAhead: { enabled: false }, bundle: { max: 1 } }],
    });
    const env = { FAULT_AUDIT: audit, FAULT_TOTAL: String(TOTAL), FAULT_SLEEP_MS: '40', FAULT_DELAY_MS: '500' };
    const config = loadConfig({ configFile, env: {} });
    expect(config.delay.holdMs).toBe(hold === null ? AUTO_HOLD_MS : 0);
    const expected = expectIds('k', MESSAGES, TOTAL);
    const began = Date.now();

    const first = await startCli(['start', '--config', configFile], { env });
    processes.push(first);
    await first.waitForLine((l) => l.msg === 'orbit started', 30_000, '"orbit started"');
    const confirmed = await publishAll(config, 'work', expected.keys());
    expect(confirmed).toHaveLength(MESSAGES);

    // Kill once a third of all runs completed: by then messages are everywhere — running,
    // settling, waiting in the delay levels and in the lane queue.
    await waitFor(() => completedRuns(readAuditFile(audit)) >= (MESSAGES * TOTAL) / 3, 60_000, 'a third of the runs', 20);
    const killedAt = Date.now();
    first.kill('SIGKILL');
    const exit = await first.waitForExit(10_000);
    expect(exit.signal).toBe('SIGKILL');
    const atKill = readAuditFile(audit);

    const second = await startCli(['start', '--config', configFile], { env });
    processes.push(second);
    await waitFor(() => tally(expected, readAuditFile(audit)).lost === 0, 120_000, 'every message to complete every run', 200);
    // Quiet: nothing waiting anywhere (no redelivery pending, no stray copy), then time for a late duplicate to show.
    const queues = topologyQueues(config, ['work']);
    await waitFor(async () => Object.values(await depthsAt(AMQP_URL, queues)).every((n) => n === 0), 30_000, 'queues to drain', 250);
    await sleep(1500);
    second.kill('SIGTERM');
    expect((await second.waitForExit(15_000)).code).toBe(0);

    const events = readAuditFile(audit);
    const t = tally(expected, events);
    const resumed = firstStartAfter(events.filter((e) => e.pid === second.pid), killedAt);
    const recoveryMs = resumed ? resumed.t - killedAt : null;

    // Settling at the kill, per the audit: started by the first daemon and not finished, or
    // finished less than SETTLE_MS before the kill (its replacement's confirm and its ack may
    // still have been on their way). Reported, not asserted: it is a timing estimate, and on a
    // loaded CI machine 20 of 100 duplicated ids once had finished earlier than that. What a
    // duplicate must be is asserted exactly below: a delivery the broker still held unacked
    // when the daemon died, handed out again to the second daemon.
    const SETTLE_MS = 2000;
    const endedAt = new Map<string, number>();
    for (const e of atKill) if (e.kind === 'end' && e.pid === first.pid) endedAt.set(`${e.id} ${e.runs}`, e.t);
    const settling = new Set<string>();
    for (const e of atKill) {
      if (e.kind !== 'start' || e.pid !== first.pid) continue;
      const end = endedAt.get(`${e.id} ${e.runs}`);
      if (end === undefined || end > killedAt - SETTLE_MS) settling.add(e.id);
    }
    const runningAtKill = atKill.filter((e) => e.kind === 'start' && e.pid === first.pid && !endedAt.has(`${e.id} ${e.runs}`)).length;

    // The first repeated run of each duplicated id: run by the first daemon first, then came
    // back to the second daemon (on the lane: as a broker redelivery).
    const starts = events.filter((e) => e.kind === 'start');
    const notRedelivered: string[] = [];
    for (const id of t.duplicatedIds) {
      const mine = starts.filter((e) => e.id === id);
      const seen = new Set<number>();
      const dup = mine.find((e) => (seen.has(e.runs) ? true : (seen.add(e.runs), false)));
      const original = dup && mine.find((e) => e.runs === dup.runs);
      if (!dup || (how === 'lane' && !dup.redelivered) || dup.pid !== second.pid || original?.pid !== first.pid) notRedelivered.push(id);
    }
    const earlier = t.duplicatedIds.filter((id) => !settling.has(id));
    if (earlier.length > 0) {
      // For the record: each such id's runs relative to the kill, and the first daemon's complaints.
      const complaints = first.lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => JSON.stringify(l).slice(0, 300));
      console.log(
        `FAULT-INFO daemon kill: ${earlier.length} duplicated id(s) had finished over ${SETTLE_MS} ms before the kill: ` +
          earlier
            .slice(0, 10)
            .map((id) => `${id}: ${events.filter((e) => e.id === id).map((e) => `${e.kind} r${e.runs} ${e.t - killedAt}ms${e.redelivered ? ' redelivered' : ''} ${e.pid === first.pid ? 'first' : 'second'}`).join(', ')}`)
            .join(' | ') +
          `; first daemon's warnings: ${complaints.length === 0 ? 'none' : complaints.join(' | ')}`,
      );
    }

    report(
      result(how === 'held' ? 'daemon SIGKILL mid-run (delay.hold)' : 'daemon SIGKILL mid-run', `SIGKILL of \`orbit start\` at ${Math.round((100 * completedRuns(atKill)) / t.expectedRuns)} % done`, t, {
        recoveryMs,
        durationMs: Date.now() - began,
      }, `${runningAtKill} handlers running at the kill; ${settling.size} messages running or finished < ${SETTLE_MS / 1000} s before it (${earlier.length} duplicated ids finished earlier); concurrency ${CONCURRENCY}`),
    );

    expect(t.strangers).toEqual([]);
    expect(t.lost).toBe(0);
    // The kill really hit work in progress: handlers running, or runs finished just before it
    // whose replacement's confirm and ack may still have been on their way. Not handlers
    // running alone: CI once killed the lane variant at an instant when none ran, and 51 ids
    // still repeated (most likely deliveries whose replacement's confirm was on its way).
    expect(settling.size).toBeGreaterThan(0);
    // The broker never holds more unacked than the prefetch: the lane's (= concurrency), and
    // held, the holder's too (HOLD_PREFETCH on the one rung every reschedule waits in).
    const unacked = CONCURRENCY + (how === 'held' ? HOLD_PREFETCH : 0);
    expect(t.duplicatedIds.length).toBeLessThanOrEqual(unacked);
    expect(t.duplicates).toBeLessThanOrEqual(unacked * TOTAL);
    expect(notRedelivered).toEqual([]);
    expect(recoveryMs).not.toBeNull();
    const problems = second.lines.filter((l) => l.level === 'error' || l.level === 'fatal' || 'raw' in l);
    expect(problems).toEqual([]);
  }, 240_000);
});
