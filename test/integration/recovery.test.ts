/**
 * Connection loss mid-stream: the broker force-closes the daemon's consume and publish
 * connections several times while messages are being processed and rescheduled. The
 * daemon must reconnect, keep consuming, and never lose a message (duplicates are allowed:
 * delivery is at-least-once).
 */
import { Daemon, Scheduler } from '../../src';
import { silentLogger } from '../../src/logging/logger';
import { names as nameOf } from '../../src/naming/names';
import { closeOrbitConnections, deleteNamespace, rabbitmqctl, randomNamespace, testConfig, withChannel } from '../helpers/broker';
import { sleep, waitFor } from '../helpers/wait';


/** Names of this namespace's orbit connections the broker still lists. */
async function orbitConnections(ns: string): Promise<string[]> {
  const stdout = await rabbitmqctl('-q', 'list_connections', 'client_properties', '--no-table-headers');
  const names: string[] = [];
  // 3.10 prints `{"connection_name","orbit:…"}`; older versions `{<<"connection_name">>,longstr,<<"orbit:…">>}`.
  for (const m of stdout.matchAll(/\{"connection_name","([^"]+)"\}|\{<<"connection_name">>,longstr,<<"([^"]+)">>\}/g)) {
    const name = m[1] ?? m[2]!;
    if (name.startsWith(`orbit:${ns}:`)) names.push(name);
  }
  return names;
}

async function depths(queues: readonly string[]): Promise<number[]> {
  return withChannel(async (ch) => {
    const out: number[] = [];
    for (const q of queues) out.push((await ch.checkQueue(q)).messageCount);
    return out;
  });
}

test('the daemon survives forced connection closes mid-stream and loses nothing', async () => {
  const MESSAGES = 300;
  const RUNS = 3; // each message is rescheduled twice
  const KILLS = 3;
  const ns = randomNamespace('rec');
  // The default delay ladder (tolerance 2 %): delays of 1–11 s rest in the rungs of 1–11 s
  // (every whole unit up to 100 units is a rung), each declared on first use.
  const config = testConfig(ns, {
    delay: { unit: '1s', levels: 4 },
    lanes: [{ name: 'r', concurrency: 10 }],
  });
  expect(config.delay.tolerance).toBe(0.02);
  const lane = `${ns}.lane.r`;
  const queues = [lane, ...Array.from({ length: 11 }, (_, i) => nameOf(ns).rung((i + 1) * 1000))];

  /** Every handler start, by id: the `runs` it saw. */
  const seen = new Map<string, number[]>();
  let handled = 0;
  /** Published after the last close: its run proves the daemon consumes again. */
  const SENTINEL = 'after-the-last-close';
  let sentinelRan = false;
  const daemon = new Daemon({
    config,
    handlers: {
      r: async (m) => {
        if (m.id === SENTINEL) {
          sentinelRan = true;
          return undefined;
        }
        const list = seen.get(m.id) ?? [];
        list.push(m.runs);
        seen.set(m.id, list);
        handled++;
        await sleep(20);
        return m.runs + 1 < RUNS ? { reschedule: { delay: 1000 } } : undefined;
      },
    },
  });
  const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
  const closed: number[] = [];
  const handledAtKill: number[] = [];
  const killedAt: number[] = [];
  let streamStart = 0;
  try {
    try {
      await daemon.start();
      streamStart = Date.now();
      // A stream: first runs spread over 0–11 s (each rabbitmqctl round takes seconds), then two reschedules 1 s apart each.
      await Promise.all(
        Array.from({ length: MESSAGES }, (_, i) => scheduler.publish('r', { i }, { id: `id-${i}`, delay: (i % 12) * 1000 })),
      );
      await scheduler.close(); // its connection must not count among the daemon's

      for (let k = 0; k < KILLS; k++) {
        await waitFor(() => daemon.readiness().ready, 15_000, `daemon ready before close #${k + 1}`);
        await sleep(500);
        handledAtKill.push(handled);
        killedAt.push(Date.now() - streamStart);
        closed.push(await closeOrbitConnections(ns));
      }
      // Not vacuous: each round closed both the consume and the publish connection.
      expect({ closed }).toEqual({ closed: closed.map((n) => Math.max(n, 2)) });

      const complete = (): boolean => {
        if (seen.size < MESSAGES) return false;
        for (const runs of seen.values()) for (let r = 0; r < RUNS; r++) if (!runs.includes(r)) return false;
        return true;
      };
      // The daemon consumes again after the last close. (Counting runs after it is not enough:
      // on a loaded machine the rabbitmqctl rounds can outlast the whole stream.)
      const late = new Scheduler({ config, role: 'cli', logger: silentLogger() });
      try {
        await late.publish('r', {}, { id: SENTINEL });
      } finally {
        await late.close();
      }
      await waitFor(() => sentinelRan, 30_000, 'a message published after the last close to run');
      await waitFor(complete, 40_000, 'every message to complete all its runs');
      // Quiescent: nothing in flight, nothing left in lane or delay queues (no redelivery pending).
      await waitFor(async () => daemon.inFlight === 0 && (await depths(queues)).every((n) => n === 0), 15_000, 'queues to drain');

      let lost = 0;
      let duplicates = 0;
      for (let i = 0; i < MESSAGES; i++) {
        const runs = seen.get(`id-${i}`) ?? [];
        for (let r = 0; r < RUNS; r++) {
          const count = runs.filter((x) => x === r).length;
          if (count === 0) lost++;
          else duplicates += count - 1;
        }
      }
      // Report the at-least-once cost of the forced closes.
      console.log(
        `recovery: ${MESSAGES * RUNS} runs expected, ${handled} handler calls, ${duplicates} duplicate(s), ${lost} lost; ` +
          `connections closed per round: ${closed.join(', ')}; handler calls at each close: ${handledAtKill.join(', ')} ` +
          `(at ${killedAt.map((ms) => `${(ms / 1000).toFixed(1)}s`).join(', ')}; all done at ${((Date.now() - streamStart) / 1000).toFixed(1)}s)`,
      );
      expect(lost).toBe(0);
      expect(handled).toBe(MESSAGES * RUNS + duplicates);
      expect((await depths([`${ns}.dead`, `${ns}.unroutable`]))).toEqual([0, 0]);
    } finally {
      await scheduler.close();
      await daemon.stop();
    }
    // stop() closed every connection orbit opened for this namespace.
    await waitFor(async () => (await orbitConnections(ns)).length === 0, 10_000, 'no orbit connections left');
  } finally {
    await deleteNamespace(ns);
  }
}, 90_000);
