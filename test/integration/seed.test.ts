import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { BUNDLE_HEADER, decodeBundle } from '../../src/message/bundle';
import { rungIndex } from '../../src/delay/ladder';
import { ladderOf } from '../../src/delay/routing';
import { names } from '../../src/naming/names';
import { AMQP_URL, deleteNamespace, queueDepth, rabbitmqctl, randomNamespace } from '../helpers/broker';
import { runCli, startCli } from '../helpers/cli';
import { sleep } from '../helpers/wait';

/** Config flags for a namespace with one lane `a` (bundled with `bundle`, else unbundled) and 12 one-second levels. */
function flags(ns: string, bundle?: { max: number; linger: string }): string[] {
  const lane = { name: 'a', bundle: bundle ?? { max: 1 } };
  // The binary levels (tolerance 0), whose 12 queues these tests count: on the default ladder a spread of an
  // hour would rest in ~460 rungs, ~1,400 file handles, more than the shared test broker has (927).
  // Classic: the interrupt tests stop a seed 2 s in, and a new namespace's quorum delay queues
  // first take 5 s to settle (crash safety, src/amqp/new-quorum-queue.ts).
  return ['--namespace', ns, '--amqp-url', AMQP_URL, '--set', 'delay.levels=12', '--set', 'delay.tolerance=0', '--set', 'delay.queueType=classic', '--set', `lanes=${JSON.stringify([lane])}`, '--log-level', 'warn'];
}

/** Logical message ids in an AMQP message: its own, or those of the bundle it carries. */
function idsOf(m: amqplib.Message): string[] {
  const version = m.properties.headers?.[BUNDLE_HEADER] as unknown;
  return version === undefined ? [String(m.properties.messageId)] : decodeBundle(m.content, version).map((e) => e.id);
}

/**
 * The namespace's 12 delay levels, the highest first, and its lane queue: the way messages
 * move (a delay's levels are spelled most significant bit first, and the lowest dead-letters
 * into the lane). Read in this order, a message that moves on during the read moves to a queue
 * not read yet. (Lane first, CI once missed 5 of the 1 s lines: read in the lane before they
 * got there, then gone from delay.0 when it was read.)
 */
function queuesOf(ns: string): string[] {
  return [...Array.from({ length: 12 }, (_, l) => `${ns}.delay.${11 - l}`), `${ns}.lane.a`];
}

/** Total messages in the namespace's delay levels and lane queue. */
async function total(ns: string): Promise<number> {
  return (await Promise.all(queuesOf(ns).map(queueDepth))).reduce((a, b) => a + b, 0);
}

/**
 * Takes every message out of the namespace's queues and returns the logical ids they carried:
 * until `expected` are found, or 5 s more have found no more (a message between two queues,
 * dead-lettered but not yet in the next, is found by the next round).
 */
async function takeAllIds(ns: string, expected: number): Promise<string[]> {
  const ids: string[] = [];
  await withBrokerChannel(async (ch) => {
    for (let quietSince = Date.now(); ids.length < expected && Date.now() - quietSince < 5000; await sleep(250)) {
      const before = ids.length;
      for (const q of queuesOf(ns)) {
        for (let m = await ch.get(q, { noAck: true }); m; m = await ch.get(q, { noAck: true })) ids.push(...idsOf(m));
      }
      if (ids.length > before) quietSince = Date.now();
    }
  });
  return ids;
}

async function withBrokerChannel(fn: (ch: amqplib.Channel) => Promise<void>): Promise<void> {
  const conn = await amqplib.connect(AMQP_URL);
  try {
    await fn(await conn.createChannel());
  } finally {
    await conn.close();
  }
}

/** Every message id in the lane queue (consumed and acked: the test owns the namespace). */
async function drainIds(queue: string, expected: number): Promise<string[]> {
  const conn = await amqplib.connect(AMQP_URL);
  const ch = await conn.createChannel();
  const ids: string[] = [];
  await ch.prefetch(1000);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 15_000);
    void ch.consume(queue, (m) => {
      if (!m) return;
      ids.push(...idsOf(m));
      ch.ack(m);
      if (ids.length >= expected) {
        clearTimeout(timer);
        // Drain anything left (duplicates from the resume) for a moment longer.
        setTimeout(resolve, 500);
      }
    });
  });
  await conn.close();
  return ids;
}

function lines(from: number, to: number): string {
  let out = '';
  for (let i = from; i <= to; i++) out += `${JSON.stringify({ id: `line-${i}`, body: { i } })}\n`;
  return out;
}

describe('orbit seed', () => {
  let dir: string;
  const namespaces: string[] = [];
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'orbit-seed-'))));
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    for (const ns of namespaces) await deleteNamespace(ns);
  });

  test('50,000 generated messages with --spread land exactly in the delay levels', async () => {
    const ns = randomNamespace('seed');
    namespaces.push(ns);
    const r = await runCli(['seed', ...flags(ns), '--lane', 'a', '--generate', '50000', '--bytes', '80', '--spread', '1h'], { timeoutMs: 90_000 });
    expect(r.stderr).not.toMatch(/skipped|stopping/);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { confirmed: number; doneThrough: number };
    expect(summary).toMatchObject({ confirmed: 50_000, doneThrough: 50_000 });
    // A spread of an hour puts (almost) all of them in the delay levels; count them all on the broker.
    expect(await total(ns)).toBe(50_000);
    expect(await queueDepth(`${ns}.delay.11`)).toBeGreaterThan(10_000);
  }, 120_000);

  /** Seeds `file` again from `--skip skip`: afterwards each of its `total` lines must be on the lane. */
  async function resumeLeavesNoGaps(ns: string, file: string, skip: number, total: number): Promise<void> {
    const second = await runCli(['seed', ...flags(ns), '--lane', 'a', '--file', file, '--skip', String(skip)], { timeoutMs: 60_000 });
    expect(second.code).toBe(0);
    const ids = new Set(await drainIds(`${ns}.lane.a`, total));
    const missing = Array.from({ length: total }, (_, i) => `line-${i + 1}`).filter((id) => !ids.has(id));
    expect(missing).toEqual([]);
  }

  test('an interrupted run resumed with --skip leaves no gaps', async () => {
    const ns = randomNamespace('seed');
    namespaces.push(ns);
    const file = join(dir, 'interrupt.jsonl');
    writeFileSync(file, lines(1, 20_000));
    const first = await startCli(['seed', ...flags(ns), '--lane', 'a', '--file', file, '--rate', '4000']);
    await sleep(2000);
    first.kill('SIGINT');
    const res = await first.waitForExit(30_000);
    expect(res.code).toBe(1);
    const skip = Number(/resume with --skip (\d+)/.exec(res.stderr)?.[1]);
    expect(skip).toBeGreaterThan(0);
    expect(skip).toBeLessThan(20_000);

    await resumeLeavesNoGaps(ns, file, skip, 20_000);
  }, 120_000);

  test('a killed run resumed from its last progress line leaves no gaps', async () => {
    const ns = randomNamespace('seed');
    namespaces.push(ns);
    const file = join(dir, 'kill.jsonl');
    writeFileSync(file, lines(1, 15_000));
    const first = await startCli(['seed', ...flags(ns), '--lane', 'a', '--file', file, '--rate', '3000']);
    // Plain progress lines come every 2 s; wait for one, then kill hard.
    const deadline = Date.now() + 10_000;
    while (!/every line through \d+ done/.test(first.stderr) && Date.now() < deadline) await sleep(100);
    first.kill('SIGKILL');
    await first.waitForExit(10_000);
    const progressLines = [...first.stderr.matchAll(/every line through (\d+) done/g)];
    expect(progressLines.length).toBeGreaterThan(0);
    const skip = Number(progressLines.at(-1)![1]);

    await resumeLeavesNoGaps(ns, file, skip, 15_000);
  }, 120_000);

  test('--generate --spread into a bundled lane: every line exactly once, in well-filled bundles, without waiting out the linger', async () => {
    const ns = randomNamespace('seed');
    namespaces.push(ns);
    // Linger far longer than the run: bundles must be sent when the window fills and at the end.
    const bundle = { max: 100, linger: '1m' };
    const r = await runCli(['seed', ...flags(ns, bundle), '--lane', 'a', '--generate', '50000', '--bytes', '80', '--spread', '10m', '--window', '5000'], { timeoutMs: 90_000 });
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { confirmed: number; doneThrough: number; seconds: number };
    expect(summary).toMatchObject({ confirmed: 50_000, doneThrough: 50_000 });
    expect(summary.seconds).toBeLessThan(60);
    // 600 due times for 50,000 lines in descending order: about 84 a bundle.
    const amqpMessages = await total(ns);
    expect(amqpMessages).toBeLessThan(50_000 / 20);
    const ids = await takeAllIds(ns, 50_000);
    expect(ids).toHaveLength(50_000);
    expect(new Set(ids).size).toBe(50_000);
  }, 120_000);

  test('--file --spread into a bundled lane fills bundles too (delays handed out in descending order)', async () => {
    const ns = randomNamespace('seed');
    namespaces.push(ns);
    const file = join(dir, 'spread-bundled.jsonl');
    // Every 1000th line carries its own delay, which wins over the spread.
    let text = '';
    for (let i = 1; i <= 30_000; i++) text += JSON.stringify(i % 1000 === 0 ? { id: `line-${i}`, body: { i }, delay: '1s' } : { id: `line-${i}`, body: { i } }) + '\n';
    writeFileSync(file, text);
    const bundle = { max: 100, linger: '1m' };
    const r = await runCli(['seed', ...flags(ns, bundle), '--lane', 'a', '--file', file, '--spread', '10m', '--window', '5000'], { timeoutMs: 90_000 });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ confirmed: 30_000, doneThrough: 30_000 });
    // 600 due seconds for 30,000 lines: about 50 a bundle (independent draws gave about 2 at this window).
    expect(await total(ns)).toBeLessThan(30_000 / 20);
    const ids = await takeAllIds(ns, 30_000);
    expect(ids).toHaveLength(30_000);
    expect(new Set(ids).size).toBe(30_000);
  }, 120_000);

  test('an interrupted run into a bundled lane resumed with --skip leaves no gaps', async () => {
    const ns = randomNamespace('seed');
    namespaces.push(ns);
    const file = join(dir, 'interrupt-bundled.jsonl');
    writeFileSync(file, lines(1, 20_000));
    const bundle = { max: 50, linger: '500ms' };
    const first = await startCli(['seed', ...flags(ns, bundle), '--lane', 'a', '--file', file, '--rate', '4000']);
    await sleep(2000);
    first.kill('SIGINT');
    const res = await first.waitForExit(30_000);
    expect(res.code).toBe(1);
    const skip = Number(/resume with --skip (\d+)/.exec(res.stderr)?.[1]);
    expect(skip).toBeGreaterThan(0);
    expect(skip).toBeLessThan(20_000);
    const firstSummary = JSON.parse(res.stdout.trim().split('\n').pop()!) as { confirmed: number; doneThrough: number };
    // Counted in lines, not bundles: everything through doneThrough was confirmed.
    expect(firstSummary.confirmed).toBeGreaterThanOrEqual(firstSummary.doneThrough);

    const second = await runCli(['seed', ...flags(ns, bundle), '--lane', 'a', '--file', file, '--skip', String(skip)], { timeoutMs: 60_000 });
    expect(second.code).toBe(0);
    const ids = new Set(await drainIds(`${ns}.lane.a`, 20_000));
    const missing = Array.from({ length: 20_000 }, (_, i) => `line-${i + 1}`).filter((id) => !ids.has(id));
    expect(missing).toEqual([]);
  }, 120_000);

  test('a spread on the shipped ladder: every quorum rung up to the spread is declared first, together, even those no message lands in', async () => {
    const ns = randomNamespace('seed');
    namespaces.push(ns);
    // The shipped delay path (quorum rungs, 2 %) and lane (bundled); 8 levels of 1 s keep the
    // ladder small for the shared broker. 10 messages over 2 min touch at most 10 of the ~80 rungs.
    const r = await runCli(
      ['seed', '--namespace', ns, '--amqp-url', AMQP_URL, '--set', 'delay.levels=8', '--set', 'lanes=[{"name":"a"}]', '--log-level', 'warn', '--lane', 'a', '--generate', '10', '--spread', '2m', '--no-progress'],
      { timeoutMs: 60_000 },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ confirmed: 10 });
    const n = names(ns);
    const listed = await rabbitmqctl('-q', 'list_queues', 'name', 'type', '--no-table-headers');
    const rungs = listed
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([name]) => name !== undefined && n.rungTtlOf(name) !== undefined)
      .map(([name, type]) => ({ name: name!, ttlMs: n.rungTtlOf(name!)!, type }));
    // The ladder's rungs (2 % of 8 levels of 1 s) up to the one a 2 min delay rounds up to.
    const ladder = ladderOf(0.02, 8);
    const expected = ladder.slice(0, rungIndex(ladder, 120) + 1).map((u) => u * 1000);
    expect(rungs.map((x) => x.ttlMs).sort((a, b) => a - b)).toEqual(expected);
    expect(new Set(rungs.map((x) => x.type))).toEqual(new Set(['quorum']));
    // Counted over AMQP (list_queues reports a quorum queue's count late): at most 10 rungs hold any.
    const depths = await Promise.all(rungs.map((x) => queueDepth(x.name)));
    expect(depths.filter((d) => d === 0).length).toBeGreaterThanOrEqual(expected.length - 10);
    expect(depths.reduce((sum, d) => sum + d, 0) + (await queueDepth(`${ns}.lane.a`))).toBeGreaterThanOrEqual(1);
  }, 90_000);

  test('malformed lines are reported by number and skipped, or stop the run with --strict', async () => {
    const ns = randomNamespace('seed');
    namespaces.push(ns);
    const input = ['{"body":1}', '{"body":', '{"body":3,"lane":"nope"}', '{"body":4,"dealy":5}', '{"body":5}'].join('\n');
    const lenient = await runCli(['seed', ...flags(ns), '--lane', 'a'], { input });
    expect(lenient.code).toBe(0);
    expect(lenient.stderr).toMatch(/line 2: not valid JSON/);
    expect(lenient.stderr).toMatch(/line 3: unknown lane "nope"/);
    expect(lenient.stderr).toMatch(/line 4: unknown key "dealy"/);
    expect(JSON.parse(lenient.stdout.trim())).toMatchObject({ confirmed: 2, malformed: 3, doneThrough: 5 });

    const strict = await runCli(['seed', ...flags(ns), '--lane', 'a', '--strict'], { input });
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/line 2: not valid JSON/);
    expect(strict.stderr).toMatch(/resume with --skip 1/);
    expect(JSON.parse(strict.stdout.trim())).toMatchObject({ confirmed: 1, malformed: 1, doneThrough: 1 });
  }, 60_000);
});
