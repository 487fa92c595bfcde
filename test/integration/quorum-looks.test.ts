/**
 * Dead letters and quorum queues. A quorum queue takes back what a closing channel returns in
 * an order of its own (measured: nearly every one of 500 out of place after one look), and
 * puts whatever is handed back behind the rest. So the dead and unroutable queues are classic
 * even on the shipped quorum delay queues (nothing dead-letters out of them), and orbit hands
 * back what it looked at in order (`src/amqp/hand-back.ts`), which keeps a quorum dead queue
 * of an earlier orbit in order through every look at all of it.
 *
 * Runs on whichever broker the suite targets (3.10, and 4.0 in CI's 4.0 stage).
 */
import amqplib from 'amqplib';
import { handBack } from '../../src/amqp/hand-back';
import { FIRST_WINDOW, walkHead } from '../../src/amqp/walk-head';
import { DeadLetterQueue } from '../../src/dlq/dead-letter-queue';
import { silentLogger } from '../../src/logging/logger';
import { names } from '../../src/naming/names';
import { BrokerSession } from '../../src/publish/session';
import { QUORUM_DELIVERY_LIMIT } from '../../src/topology/broker-features';
import { AMQP_URL, deleteNamespace, randomNamespace, testConfig } from '../helpers/broker';

const DEAD = 300;

describe('looks at a quorum queue keep its order', () => {
  const ns = randomNamespace('qlook');
  const config = testConfig(ns, { lanes: [{ name: 'q' }] }, { defaults: 'shipped' });
  const dead = names(ns).dead;
  const ids = Array.from({ length: DEAD }, (_, i) => `dead-${String(i).padStart(3, '0')}`);
  let session: BrokerSession;
  let conn: amqplib.ChannelModel;

  beforeAll(async () => {
    conn = await amqplib.connect(AMQP_URL, { noDelay: true }); // as orbit connects: no 40 ms per hand-back chunk
    // A dead queue as an earlier orbit declared it on quorum delay queues: a quorum queue
    // with orbit's delivery limit, holding dead letters as a lane stores them.
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(dead, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': QUORUM_DELIVERY_LIMIT } });
    for (const id of ids) {
      ch.sendToQueue(dead, Buffer.from(id), { messageId: id, persistent: true, headers: { 'x-orbit-lane': 'q', 'x-orbit-error-code': 'POISON', 'x-orbit-error': 'poison' } });
    }
    await ch.waitForConfirms();
    await ch.close();
    session = await BrokerSession.open(config, 'cli', silentLogger());
  }, 60_000);

  afterAll(async () => {
    await session?.close();
    await conn?.close().catch(() => undefined);
    await deleteNamespace(ns);
  }, 60_000);

  /** Every message of the dead queue, head first, by orbit's own look. */
  async function order(dlq: DeadLetterQueue): Promise<string[]> {
    return (await dlq.list('dead', DEAD + 10)).map((v) => String(v.id));
  }

  test('a new namespace on the shipped quorum delay queues gets classic dead and unroutable queues', async () => {
    const fresh = randomNamespace('qlookc');
    const freshConfig = testConfig(fresh, { lanes: [{ name: 'q' }] }, { defaults: 'shipped' });
    expect(freshConfig.delay.queueType).toBe('quorum');
    const s = await BrokerSession.open(freshConfig, 'cli', silentLogger());
    try {
      expect(s.topology.drifts()).toEqual([]);
      for (const queue of [names(fresh).dead, names(fresh).unroutable]) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        // A quorum declare of a classic queue is refused.
        await expect(ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } })).rejects.toThrow(/inequivalent arg/);
      }
    } finally {
      await s.close();
      await deleteNamespace(fresh);
    }
  });

  test('an earlier orbit\'s quorum dead queue is used as it is (noted, safe to look into)', () => {
    const drift = session.topology.drifts().find((d) => d.queue === dead);
    expect(drift).toMatchObject({ severity: 'ignored', role: 'dead' });
    expect(drift!.why).toContain('quorum queue');
    expect(session.topology.unsafeToLook(dead)).toBe(false);
  });

  test('on it, list and sweeps of the whole queue and a filtered purge, five rounds each: same order, none lost', async () => {
    const dlq = new DeadLetterQueue(session, config.lanes);
    expect(await order(dlq)).toEqual(ids);
    for (let round = 0; round < 5; round++) {
      expect(await order(dlq)).toEqual(ids);
      expect(await dlq.replay('dead', { id: 'no-such-id' })).toMatchObject({ replayed: 0, skipped: DEAD });
      expect(await order(dlq)).toEqual(ids);
    }
    // A purge of one in the middle takes that one and moves none of the others.
    const victim = ids[150]!;
    expect(await dlq.purgeMatching('dead', { id: victim })).toMatchObject({ purged: 1 });
    expect(await order(dlq)).toEqual(ids.filter((id) => id !== victim));
    expect(await dlq.count('dead')).toBe(DEAD - 1);
  }, 120_000);

  test('handBack of 1,000 fetched from a plain quorum queue: in order, twice over', async () => {
    const queue = `${ns}.plain`;
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    for (let i = 0; i < 1000; i++) ch.sendToQueue(queue, Buffer.from(String(i)), { messageId: String(i) });
    await ch.waitForConfirms();
    await ch.close();
    for (let round = 0; round < 2; round++) {
      const look = await conn.createChannel();
      const held: amqplib.GetMessage[] = [];
      for (;;) {
        const m = await look.get(queue, { noAck: false });
        if (!m) break;
        held.push(m);
      }
      expect(held.map((m) => Number(m.properties.messageId))).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      await handBack(look, queue, held);
      await look.close();
    }
  }, 60_000);

  test.each(['classic', 'quorum'])(
    'walkHead on a %s queue of 2,000: walks past the end, of all and stopped at 150 each see the head in order; none lost',
    async (type) => {
      const queue = `${ns}.walk-${type}`;
      const COUNT = 2000;
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': type } });
      for (let i = 0; i < COUNT; i++) ch.sendToQueue(queue, Buffer.from(String(i)), { messageId: String(i) });
      await ch.waitForConfirms();
      await ch.close();
      const all = Array.from({ length: COUNT }, (_, i) => i);
      const look = async (max: number, stopAt: number): Promise<{ seen: number[]; visited: number; unvisited: number }> => {
        const walker = await conn.createChannel();
        const held: amqplib.Message[] = [];
        const walk = await walkHead(walker, queue, max, (msg, index) => {
          held.push(msg);
          return index + 1 < stopAt;
        });
        await handBack(walker, queue, [...held, ...walk.unvisited]);
        await walker.close();
        return { seen: held.map((m) => Number(m.properties.messageId)), visited: walk.visited, unvisited: walk.unvisited.length };
      };
      // Asked for more than there is: ends when the queue runs dry, every message once, in order.
      expect(await look(COUNT + 500, Infinity)).toEqual({ seen: all, visited: COUNT, unvisited: 0 });
      expect((await look(COUNT, Infinity)).seen).toEqual(all);
      // Stopped inside the second window (100, then 1,000): the rest of that window goes back too.
      expect(await look(COUNT, 150)).toEqual({ seen: all.slice(0, 150), visited: 150, unvisited: FIRST_WINDOW * 11 - 150 });
      // A classic queue takes each back to its place. A quorum queue puts what a look that
      // stopped short handed back behind the rest (why dead queues are classic): all there.
      const after = (await look(COUNT, Infinity)).seen;
      if (type === 'classic') expect(after).toEqual(all);
      else expect([...after].sort((a, b) => a - b)).toEqual(all);
      const check = await conn.createChannel();
      expect((await check.checkQueue(queue)).messageCount).toBe(COUNT);
      await check.deleteQueue(queue);
      await check.close();
    },
    60_000,
  );
});
