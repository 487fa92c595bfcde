/**
 * Fault: one node of a 3-node cluster dies mid-run. The cluster is started by
 * `scripts/cluster.sh` (separate node names, ports and data dirs on loopback); orbit runs
 * with every node's URL, quorum delay levels (at-least-once dead-lettering) and a quorum
 * lane (no priorities: `maxPriority: 0`). The node the daemon's consume connection is on is
 * SIGKILLed; the daemon fails over to another node and nothing is lost.
 */
import { Daemon } from '../../src';
import { randomNamespace, testConfig } from '../helpers/broker';
import { capturingLogger } from '../helpers/capturing-logger';
import { type ScriptCluster, startCluster } from '../helpers/cluster';
import { completedRuns, describeFaults, expectIds, firstStartAfter, MemoryAudit, report, result, tally } from './audit';
import { DaemonLog, depthsAt, publishAll, topologyQueues } from './util';
import { sleep, waitFor } from '../helpers/wait';

const LEVELS = 6;
const CONCURRENCY = 20;
/** RabbitMQ's default `dead_letter_worker_consumer_prefetch` (rabbit.app, 3.10 and 4.0). */
const DLX_WORKER_PREFETCH = 32;
/** The columns of the queue listings a stall reports (`f[1]` messages, `f[2]` ready, `f[5]` leader). */
const LISTED = ['name', 'messages', 'messages_ready', 'messages_unacknowledged', 'consumers', 'leader'] as const;

function restartsOf(exposition: string): number {
  let n = 0;
  for (const m of exposition.matchAll(/^orbit_consumer_restarts_total\{[^}]*\} (\d+)$/gm)) n += Number(m[1]);
  return n;
}

describeFaults('fault: a cluster node dies (3-node cluster from scripts/cluster.sh)', () => {
  let cluster: ScriptCluster | undefined;

  beforeAll(async () => {
    // The management plugin: the daemon reads the cluster's nodes from its API at start.
    cluster = await startCluster({ management: true });
  }, 240_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 120_000);

  test('a daemon on the shipped defaults warns at start that its classic lane, dead and unroutable queues each live on one node', async () => {
    const c = cluster!;
    const ns = randomNamespace('fcluw');
    const config = testConfig(
      ns,
      { amqp: { url: c.urls.join(','), reconnect: '500ms', management: { url: c.managementUrl(1) } }, lanes: [{ name: 'a' }] },
      { defaults: 'shipped' },
    );
    expect([config.deadLetters.queueType, config.lanes[0]!.queueType, config.delay.queueType]).toEqual(['classic', 'classic', 'quorum']);
    const { logger, lines } = capturingLogger();
    const daemon = new Daemon({ config, logger, handlers: { a: async () => undefined } });
    try {
      await daemon.start();
      // After the node list: the check waits for the nodes' first statistics round (5 s) first.
      await waitFor(() => lines.some((l) => l.path === 'lanes[].queueType'), 60_000, 'the placement warnings');
    } finally {
      await daemon.stop();
    }
    const placement = lines.filter((l) => l.level === 'warn' && typeof l.path === 'string' && String(l.path).endsWith('queueType'));
    expect(placement.map((l) => l.path).sort()).toEqual(['deadLetters.queueType', 'lanes[].queueType']);
    for (const l of placement) {
      expect(String(l.msg)).toContain('the broker is a cluster of 3 nodes');
      for (const i of [1, 2, 3]) expect(String(l.msg)).toContain(c.node(i));
    }
    expect(String(placement.find((l) => l.path === 'lanes[].queueType')!.msg)).toContain('lane a is a classic queue');
  }, 120_000);

  test('quorum delay levels and lane, daemon given all 3 URLs: SIGKILL of the node it is connected to; fails over, lost 0', async () => {
    const c = cluster!;
    const ns = randomNamespace('fclu');
    const MESSAGES = 600;
    const TOTAL = 6;
    const config = testConfig(ns, {
      amqp: { url: c.urls.join(','), reconnect: '500ms', heartbeat: '5s', publishTimeout: '10s' },
      delay: { unit: '100ms', levels: LEVELS, queueType: 'quorum' },
      // Replicated dead and unroutable queues: a classic one on the dead node would hold up the
      // daemon's topology assert (and so every lane) until that node is back.
      deadLetters: { queueType: 'quorum' },
      shutdown: { timeout: '5s' },
      lanes: [{ name: 'work', concurrency: CONCURRENCY, queueType: 'quorum', maxPriority: 0 }],
    });
    const audit = new MemoryAudit();
    const log = new DaemonLog(ns);
    const daemon = new Daemon({
      config,
      logger: log.logger,
      handlers: { work: audit.handler({ total: TOTAL, delayMs: 2000, sleepMs: () => 10 + Math.random() * 30 }) },
    });
    const expected = expectIds('q', MESSAGES, TOTAL);
    const began = Date.now();
    let killed = 0;
    let killedAt = 0;
    /** Set when a node was found dead before the kill: what cluster.sh says of it. */
    let crashed: string | undefined;
    let recoveryMs: number | null = null;
    const survivor = (n: number) => (n === 1 ? 2 : 1);
    const remedies: string[] = [];
    const remedyTimes: number[] = [];
    let firstRemedyAt: number | null = null;
    let doneMs = 0;
    let remainingAtKill = 0;
    let consumerRestarts = 0;
    try {
      await daemon.start();
      // Quorum queues get a replica on every node; give their Raft groups a moment to settle.
      await sleep(3000);
      expect(await publishAll(config, 'work', expected.keys())).toHaveLength(MESSAGES);
      // The node the consume connection is on (urls[0] first, so usually node 1), asked of node 2 or 3.
      let on: number | undefined;
      await waitFor(async () => (on = (await c.nodeOfConnection(`orbit:${ns}:consume`, 2)) ?? (await c.nodeOfConnection(`orbit:${ns}:consume`, 3))) !== undefined, 10_000, 'the consume connection in the listing of node 2 or 3', 250);
      await waitFor(() => completedRuns(audit.events) >= MESSAGES * TOTAL * 0.3, 90_000, '30 % of the runs');
      // A node that died on its own before the kill (CI saw node 1 gone once, on 4.0, cause
      // unknown): that crash is the fault. Killing a second node would leave no quorum, so the
      // run goes on with the one down, and says so with cluster.sh's account of why.
      const down = await c.downNodes();
      if (down.size > 0) {
        const [node, why] = [...down][0]!;
        killed = node;
        crashed = `node ${node} was down before the kill (${why})`;
        process.stdout.write(`FAULT-INFO cluster: ${crashed}\n`);
      } else {
        // Mid-wave, not between waves (the 600 messages rest 2 s between runs): handlers run,
        // the lane holds deliveries unacked and replacements are on their way to be confirmed.
        await waitFor(() => daemon.inFlight >= CONCURRENCY / 2, 30_000, 'handlers in flight', 5);
        killed = on!;
        await c.kill(killed);
      }
      killedAt = Date.now(); // the node's process is gone (cluster.sh waits for it)
      remainingAtKill = tally(expected, audit.events).lost;
      // RabbitMQ 3.10.8's at-least-once dead-letter worker can stall after the node leading
      // the queues died: messages stay in a delay level (counted, not ready) and never move on.
      // Nothing is lost, but nothing progresses either. When progress stops for STALL_MS with
      // work left, do what an operator would: restart the app of the node that now leads the
      // stuck queue (its leadership moves and a fresh dead-letter worker starts). In our runs
      // `rabbitmq-queues rebalance quorum` did not unstick it; it is the last resort here.
      const STALL_MS = 8000;
      let lastProgress = Date.now();
      let lastEnds = audit.ends;
      const deadline = Date.now() + 150_000;
      while (tally(expected, audit.events).lost > 0) {
        if (Date.now() > deadline) {
          const t = tally(expected, audit.events);
          throw new Error(`work did not complete: lost ${t.lost}, readiness ${JSON.stringify(daemon.readiness())}, inFlight ${daemon.inFlight}, remedies ${remedies.join(', ')}, ` +
            `queues ${await c.ctl(survivor(killed), 'list_queues', ...LISTED, '--no-table-headers').catch((e: Error) => e.message)}`);
        }
        if (audit.ends !== lastEnds) {
          lastEnds = audit.ends;
          lastProgress = Date.now();
        } else if (Date.now() - lastProgress > STALL_MS) {
          // Stuck: messages counted in a queue but none ready (held for dead-lettering).
          const listing = await c.ctl(survivor(killed), 'list_queues', ...LISTED, '--no-table-headers');
          const stuck = listing.split('\n').map((l) => l.split('\t')).filter((f) => f.length === LISTED.length && Number(f[1]) > 0 && f[2] === '0');
          const at = `${((Date.now() - killedAt) / 1000).toFixed(0)} s`;
          const what = stuck.map((f) => `${f[0]} ${f[1]}`).join('; ') || 'nothing visibly stuck';
          remedyTimes.push(Date.now() - killedAt);
          if (remedies.length >= 4) {
            throw new Error(`still stalled after ${remedies.join(', ')}: readiness ${JSON.stringify(daemon.readiness())}, inFlight ${daemon.inFlight}; queues (${LISTED.join(', ')}):\n${listing}`);
          }
          if (remedies.length === 2) {
            remedies.push(`rebalance quorum at ${at} (stuck: ${what})`);
            await c.queues(survivor(killed), 'rebalance', 'quorum');
          } else {
            // Restart the app of the node leading each stuck queue: its leadership moves, and
            // the new leader starts a fresh dead-letter worker.
            const leaders = [...new Set(stuck.map((f) => f[5]!))];
            const nodes = [1, 2, 3].filter((i) => leaders.includes(c.node(i)) && i !== killed);
            remedies.push(`stop_app/start_app of node ${nodes.join(', ') || '(none)'} at ${at} (stuck: ${what})`);
            for (const i of nodes) {
              await c.ctl(i, 'stop_app');
              await c.ctl(i, 'start_app');
            }
          }
          lastProgress = Date.now();
        }
        await sleep(200);
      }
      doneMs = Date.now() - killedAt;
      const resumed = firstStartAfter(audit.events, killedAt + 1);
      recoveryMs = resumed ? resumed.t - killedAt : null;
      firstRemedyAt = remedyTimes[0] ?? null;
      const queues = topologyQueues(config, ['work']);
      const url = c.urls[survivor(killed) - 1]!;
      await waitFor(async () => daemon.inFlight === 0 && Object.values(await depthsAt(url, queues)).every((n) => n === 0), 30_000, 'queues to drain', 250);
      await sleep(1000);
      // The daemon now lives on the surviving nodes.
      const now = await c.nodeOfConnection(`orbit:${ns}:consume`, survivor(killed));
      expect(now).toBeDefined();
      expect(now).not.toBe(killed);
      consumerRestarts = restartsOf(await daemon.metrics.registry.metrics());
    } catch (err) {
      throw log.withLogTail(err);
    } finally {
      await daemon.stop();
    }
    log.remove();
    const t = tally(expected, audit.events);
    report(
      result('cluster node killed (quorum, 3 nodes)', `SIGKILL of node ${killed} of 3 (the one the daemon consumed from)`, t, {
        recoveryMs,
        durationMs: Date.now() - began,
      }, `cluster started by scripts/cluster.sh in ${(c.startMs / 1000).toFixed(0)} s; ${remainingAtKill} runs still to do at the kill; recovery = node killed → first handler run on another node; ` +
        `all work done ${(doneMs / 1000).toFixed(0)} s after the kill; ${crashed === undefined ? '' : `${crashed}; `}` +
        `lane consumers restarted by the daemon's consumer watch: ${consumerRestarts}; operator steps needed: ${remedies.length === 0 ? 'none' : remedies.join(', ')}` +
        (firstRemedyAt !== null && recoveryMs !== null && recoveryMs > firstRemedyAt ? ' (handlers ran again only after them)' : '')),
    );
    expect(remainingAtKill).toBeGreaterThan(MESSAGES); // the kill hit a run in full swing
    expect(t.strangers).toEqual([]);
    expect(t.lost).toBe(0);
    // At-least-once: what was in flight at the kill repeats (and may repeat its later runs).
    // Two sources, each bounded: the lane's unacked deliveries (prefetch = CONCURRENCY) come
    // back on the surviving node, and each quorum delay level whose leader died re-sends what
    // its at-least-once dead-letter worker had sent but not yet had confirmed, up to the
    // worker's prefetch (`dead_letter_worker_consumer_prefetch`, 32 on 3.10 and 4.0) per level.
    // CI saw 42 and 45 ids, above the earlier 2 × CONCURRENCY guess that ignored the second.
    expect(t.duplicatedIds.length).toBeLessThanOrEqual(CONCURRENCY + LEVELS * DLX_WORKER_PREFETCH);
  }, 300_000);
});
