/**
 * A delay rung that does not answer. A quorum rung back from a crash without a leader answers
 * no command (docs/RELIABILITY.md, seen on RabbitMQ 4.0 in the fault suite): a `basic.get` on
 * it waits forever, and so does the close of the channel it was sent on. Work-ahead fetched
 * from it with no bound, so it stopped working ahead for good, and the daemon's stop then
 * waited for that channel's close without end.
 *
 * The rung is made sick here by adding a member on a node that does not exist to its Raft
 * cluster: that change can never commit, and from then on the queue commits nothing (measured
 * on 4.0.5: passive and active declares still answer; a get and its channel's close do not).
 * On a private node (3.10, or 4.0 under ORBIT_TEST_RABBITMQ=4).
 */
import pino from 'pino';
import { Daemon, Scheduler } from '../../src';
import { CHANNEL_CLOSE_TIMEOUT_MS } from '../../src/amqp/managed-channel';
import { silentLogger } from '../../src/logging/logger';
import { names } from '../../src/naming/names';
import { randomNamespace, testConfig } from '../helpers/broker';
import { type PrivateBroker, privateBrokerForFile } from '../helpers/private-broker';
import { Recorder } from '../helpers/recorder';
import { brokerClockSlackMs } from '../helpers/broker-clock';
import { depthsAt } from '../faults/util';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const broker = privateBrokerForFile();

/** The namespace's rungs, shortest TTL first. */
async function rungsOf(b: PrivateBroker, ns: string): Promise<string[]> {
  const n = names(ns);
  return (await b.ctl('-q', 'list_queues', 'name', '--no-table-headers'))
    .split('\n')
    .map((l) => l.trim())
    .filter((q) => q.startsWith(`${ns}.`) && n.rungTtlOf(q) !== undefined)
    .sort((x, y) => n.rungTtlOf(x)! - n.rungTtlOf(y)!);
}

/** Adds a member on a node that does not exist to `queue`'s Raft cluster: from then on the queue commits nothing. */
async function makeSick(b: PrivateBroker, queue: string): Promise<void> {
  await b.ctl(
    'eval',
    `{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"${queue}">>)), ` +
      `{Name, _} = Member = amqqueue:get_pid(Q), ra:add_member(Member, {Name, 'ghost@nowhere'}, 2000).`,
  );
}

test('work-ahead leaves a rung that does not answer alone, works ahead from the next, and the daemon still stops', async () => {
  const b = broker();
  const ns = randomNamespace('sick');
  const PUBLISH_TIMEOUT_MS = 2000;
  const config = testConfig(ns, {
    amqp: { url: b.url, reconnect: '500ms', publishTimeout: `${PUBLISH_TIMEOUT_MS}ms` },
    delay: { unit: '100ms', levels: 12, queueType: 'quorum' },
    lanes: [{ name: 'w', concurrency: 10, workAhead: { idle: '300ms', maxAdvance: '1h', maxRate: 1000 } }],
  });
  const scheduler = new Scheduler({ config, logger: silentLogger() });
  await scheduler.connect();
  // Two rungs: the nearer one is looked into first, and is the one made sick.
  await scheduler.publish('w', {}, { id: 'near', delay: 60_000 });
  await scheduler.publish('w', {}, { id: 'far', delay: 300_000 });
  await scheduler.close();
  const rungs = await rungsOf(b, ns);
  expect(rungs).toHaveLength(2);
  const sick = rungs[0]!;
  await makeSick(b, sick);

  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const recorder = new Recorder();
  const daemon = new Daemon({ config, logger, handlers: { w: recorder.wrap() } });
  await daemon.start();
  let stopped = false;
  try {
    // The sick rung's fetch times out (publishTimeout), the rung is left alone, and the next
    // round takes the far message early, on a new channel.
    await waitFor(() => recorder.runs.some((r) => r.id === 'far'), 30_000, 'the far message, taken early');
    expect(recorder.runs.find((r) => r.id === 'far')!.early).toBe(true);
    expect(recorder.runs.some((r) => r.id === 'near')).toBe(false);
    const warned = lines.map((l) => JSON.parse(l) as { msg: string; queue?: string }).filter((l) => l.msg.includes('did not answer a fetch'));
    expect(warned.map((l) => l.queue)).toEqual([sick]);

    // The stop waits for no unanswered close: the abandoned channel is not waited for, and the
    // connection's close is bounded.
    const began = Date.now();
    await daemon.stop();
    stopped = true;
    expect(Date.now() - began).toBeLessThan(2 * CHANNEL_CLOSE_TIMEOUT_MS + 5000);
  } finally {
    if (!stopped) await daemon.stop();
    // The sick rung would hold its close: deleted here (with the message in it).
    await b.ctl('delete_queue', sick).catch(() => undefined);
  }
});

test('a rung that answers its declare but confirms nothing: each publish to it goes to the next rung up after the publish timeout, and every message runs, never early', async () => {
  const b = broker();
  const ns = randomNamespace('sickp');
  const PUBLISH_TIMEOUT_MS = 2000;
  const DELAY_MS = 3000;
  const config = testConfig(ns, {
    amqp: { url: b.url, reconnect: '500ms', publishTimeout: `${PUBLISH_TIMEOUT_MS}ms` },
    delay: { unit: '100ms', levels: 12, queueType: 'quorum' },
    lanes: [{ name: 'w', concurrency: 10 }],
  });
  const scheduler = new Scheduler({ config, logger: silentLogger() });
  await scheduler.connect();
  const due = new Map<string, number>();
  let sick: string | undefined;
  try {
    // The rung of DELAY_MS exists (declared and settled by this first publish) and, once the
    // first message has left it for the lane, turns sick.
    due.set('first', (await scheduler.publish('w', {}, { id: 'first', delay: DELAY_MS })).dueAt.getTime());
    [sick] = await rungsOf(b, ns);
    await waitFor(async () => (await depthsAt(b.url, [sick!]))[sick!] === 0, 30_000, 'the first message out of the rung');
    await makeSick(b, sick!);
    // Published to at once (declared recently, and its declare answers): no confirm, and after
    // publishTimeout it goes one rung up (new: declared, settled). The next message tries the
    // rung again, and goes up the same way.
    for (const id of ['detoured', 'next']) {
      const began = Date.now();
      due.set(id, (await scheduler.publish('w', {}, { id, delay: DELAY_MS })).dueAt.getTime());
      expect(Date.now() - began).toBeGreaterThanOrEqual(PUBLISH_TIMEOUT_MS);
    }
    expect(await rungsOf(b, ns)).toHaveLength(2);
  } finally {
    await scheduler.close();
  }
  const recorder = new Recorder();
  const daemon = new Daemon({ config, logger: silentLogger(), handlers: { w: recorder.wrap() } });
  await daemon.start();
  try {
    await waitFor(() => recorder.count >= 3, 30_000, 'every message to run');
    for (const r of recorder.runs) expect(r.startedAt).toBeGreaterThanOrEqual(due.get(r.id)! - brokerClockSlackMs(DELAY_MS));
    expect(recorder.runs.map((r) => r.id).sort()).toEqual(['detoured', 'first', 'next']);
  } finally {
    await daemon.stop();
    if (sick !== undefined) await b.ctl('delete_queue', sick).catch(() => undefined);
  }
});

test('a rung that stalls the publish channel holds no other rung: publishes behind it go again on a new channel, to their own rungs', async () => {
  const b = broker();
  const ns = randomNamespace('sicks');
  const PUBLISH_TIMEOUT_MS = 2000;
  const config = testConfig(ns, {
    amqp: { url: b.url, reconnect: '500ms', publishTimeout: `${PUBLISH_TIMEOUT_MS}ms` },
    // A coarse ladder: few rungs to declare up front.
    delay: { unit: '100ms', levels: 12, queueType: 'quorum', tolerance: '25%' },
    lanes: [{ name: 'w', concurrency: 10 }],
  });
  const SICK_DELAY_MS = 20_000;
  const HEALTHY_DELAY_MS = 40_000;
  const made = new Scheduler({ config, logger: silentLogger() });
  await made.connect();
  await made.publish('w', {}, { id: 'made-sick', delay: SICK_DELAY_MS });
  await made.publish('w', {}, { id: 'made-healthy', delay: HEALTHY_DELAY_MS });
  await made.close();
  const [sick, healthy] = await rungsOf(b, ns);
  await makeSick(b, sick!);

  // A new publish channel: its first publish to the sick rung waits for the rung to register
  // it, which the rung never does (the broker gives up after ~65 s), and the channel with it.
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const scheduler = new Scheduler({ config, logger });
  await scheduler.connect();
  // Every rung these publishes can take is declared (and settled) first, so no publish
  // waits out a new quorum rung's settle.
  await scheduler.prepareRungs(2 * HEALTHY_DELAY_MS, 'w');
  const timed = async (id: string, delay: number) => {
    const began = Date.now();
    await scheduler.publish('w', {}, { id, delay });
    return Date.now() - began;
  };
  try {
    const [toSick, behind] = await Promise.all([timed('sick-1', SICK_DELAY_MS), timed('behind', HEALTHY_DELAY_MS)]);
    // Held until the stall was seen (one publish timeout), then confirmed on a new channel.
    expect(behind).toBeLessThan(2 * PUBLISH_TIMEOUT_MS + 1000);
    // The sick rung's message went one rung up after failing on a channel of its own.
    expect(toSick).toBeGreaterThanOrEqual(PUBLISH_TIMEOUT_MS);
    // From now on the sick rung holds nothing else up.
    const [toSickAgain, healthyNow] = await Promise.all([timed('sick-2', SICK_DELAY_MS), timed('healthy-now', HEALTHY_DELAY_MS)]);
    expect(healthyNow).toBeLessThan(PUBLISH_TIMEOUT_MS);
    expect(toSickAgain).toBeGreaterThanOrEqual(PUBLISH_TIMEOUT_MS);
    const warned = lines.map((l) => JSON.parse(l) as { msg: string; suspects?: string[] }).filter((l) => l.msg.includes('publish channel stalled'));
    expect(warned.length).toBeGreaterThanOrEqual(1);
    expect(warned[0]!.suspects).toContain(sick);
    // Every healthy message is in its own rung (none detoured): the one from before, and the
    // two sent behind and beside the sick rung's. A stalled first copy may land there too,
    // once the broker gives up on the sick rung (at-least-once): at most one more.
    const depth = (await depthsAt(b.url, [healthy!]))[healthy!]!;
    expect(depth).toBeGreaterThanOrEqual(3);
    expect(depth).toBeLessThanOrEqual(4);
  } finally {
    await scheduler.close();
    await b.ctl('delete_queue', sick!).catch(() => undefined);
  }
});
