/**
 * The quorum WAL's symptom (issue 14): a stock node keeps everything its quorum queues wrote
 * in RAM until the WAL rolls over at 512 MB; a client cannot read the setting, so a daemon
 * reads each node's memory breakdown from the management API and warns when a node holds
 * more than 256 MB in binaries and quorum tables (`topology/broker-memory.ts`). Two private
 * nodes with the management plugin, one with a large WAL, one with `raft.wal_max_size_bytes
 * = 64 MB` (what docker/rabbitmq/rabbitmq.conf sets): the same 330 MB written to a quorum
 * queue of each; only the first is reported. Runs on the node version the suite runs on
 * (3.10, or 4.0 with ORBIT_TEST_RABBITMQ=4).
 *
 * The large WAL is 1 GiB, not the stock 512 MiB: Ra rolls the first WAL file after a node
 * starts over at a random size between half the setting and all of it (`ra_log_wal:roll_over`,
 * so that a cluster's nodes do not all flush at once), and a stock node rolled over before
 * the 330 MB in about a quarter of starts, freeing what the test needs it to hold (CI on 4.0,
 * twice). With 1 GiB the first file holds at least 512 MiB: the same symptom, every time.
 */
import amqplib from 'amqplib';
import { BrokerMemoryWatch, WAL_RETRIES } from '../../src/amqp/broker-memory-watch';
import { readNodesMemory } from '../../src/amqp/read-broker-nodes';
import type { ResolvedConfig } from '../../src/config/types';
import { Daemon } from '../../src/daemon';
import { RECOMMENDED_WAL_BYTES, WAL_MEMORY_WARN_BYTES } from '../../src/topology/broker-memory';
import { randomNamespace, testConfig } from '../helpers/broker';
import { capturingLogger } from '../helpers/capturing-logger';
import { freePort, startPrivateBroker, type PrivateBroker } from '../helpers/private-broker';
import { sleep, waitFor } from '../helpers/wait';

jest.setTimeout(300_000);

/** Written to one quorum queue: above the warning's 256 MiB, below the large WAL's first file (no rollover). */
const MESSAGES = 3300;
const BODY = Buffer.alloc(100 * 1024, 'x');
/** The large WAL: its first file after a start rolls over somewhere in 512 MiB–1 GiB. */
const LARGE_WAL_BYTES = 1024 * 1024 * 1024;

interface Node {
  broker: PrivateBroker;
  managementUrl: string;
}

async function nodeWithManagement(extra: readonly string[]): Promise<Node> {
  const port = await freePort();
  const broker = await startPrivateBroker(90_000, {
    plugins: ['rabbitmq_management'],
    extraConfig: [`management.tcp.port = ${port}`, 'management.tcp.ip = 127.0.0.1', ...extra],
  });
  return { broker, managementUrl: `http://guest:guest@127.0.0.1:${port}/` };
}

/** Publishes MESSAGES bodies of 100 KiB, confirmed, to a quorum queue of the node. */
async function writeToQuorumQueue(url: string, queue: string): Promise<void> {
  const conn = await amqplib.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    for (let i = 0; i < MESSAGES; i += 100) {
      for (let j = i; j < Math.min(MESSAGES, i + 100); j++) ch.sendToQueue(queue, BODY, { persistent: true });
      await ch.waitForConfirms();
    }
    const { messageCount } = await ch.checkQueue(queue);
    expect(messageCount).toBe(MESSAGES);
  } finally {
    await conn.close();
  }
}

function configFor(node: Node): ResolvedConfig {
  // The shipped defaults: quorum delay queues.
  return testConfig(
    randomNamespace('walmem'),
    { amqp: { url: node.broker.url, reconnect: '500ms', management: { url: node.managementUrl } }, lanes: [{ name: 'a' }] },
    { defaults: 'shipped' },
  );
}

// What is declared goes with the nodes, which are private to this file.
const nodes: Node[] = [];
let large: Node;
let bounded: Node;

beforeAll(async () => {
  [large, bounded] = await Promise.all([
    nodeWithManagement([`raft.wal_max_size_bytes = ${LARGE_WAL_BYTES}`]),
    nodeWithManagement([`raft.wal_max_size_bytes = ${RECOMMENDED_WAL_BYTES}`]),
  ]);
  nodes.push(large, bounded);
  await Promise.all(nodes.map((n) => writeToQuorumQueue(n.broker.url, 'wal-fill')));
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.broker.stop()));
});

describe('the quorum WAL memory check', () => {
  test("a node with a large WAL: the daemon warns once, naming the node, its figures and the setting; the password never shows", async () => {
    const config = configFor(large);
    expect(config.delay.queueType).toBe('quorum');
    const { logger, lines } = capturingLogger();
    logger.level = 'debug';
    const daemon = new Daemon({ config, handlers: { a: async () => ({ done: true }) }, logger });
    try {
      await daemon.start();
      // In the background: the first look at once, again 30 s after a look the API was too busy to answer.
      await waitFor(() => lines.some((l) => /raft\.wal_max_size_bytes/.test(String(l.msg))), 180_000, 'the WAL warning').catch(async (err: Error) => {
        const now = await readNodesMemory(config.amqp, [large.broker.nodename]).catch((e: Error) => e.message);
        throw new Error(`${err.message}; the daemon logged: ${JSON.stringify(lines.map((l) => [l.msg, l.managementApi]))}; the node now: ${JSON.stringify(now)}`);
      });
    } finally {
      await daemon.stop();
    }
    const warnings = lines.filter((l) => /raft\.wal_max_size_bytes/.test(String(l.msg)));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', node: large.broker.nodename, path: 'delay.queueType' });
    const held = Number(/holds (\d+) MB/.exec(String(warnings[0]!.msg))![1]);
    expect(held * 1e6).toBeGreaterThan(WAL_MEMORY_WARN_BYTES - 1e6);
    expect(String(warnings[0]!.msg)).toContain(`raft.wal_max_size_bytes = ${RECOMMENDED_WAL_BYTES}`);
    expect(JSON.stringify(lines)).not.toContain('guest:guest');

    // Looked at twice more (every 5 minutes in a daemon): reported at each look while the node
    // shows it, logged once. The node's WAL may have rolled over since the daemon looked,
    // freeing what it held (seen on 4.0 in CI): then a look has nothing to report. The rule
    // itself, on fixed figures: test/unit/broker-memory.test.ts.
    const again = capturingLogger();
    const watch = new BrokerMemoryWatch(config.amqp, config, again.logger, { nodes: [large.broker.nodename] });
    const first = await watch.check();
    const second = await watch.check();
    for (const look of [first, second]) for (const w of look) expect(w.node).toBe(large.broker.nodename);
    expect(again.lines.filter((l) => l.level === 'warn')).toHaveLength(Math.max(first.length, second.length));
  });

  test('a node with a 64 MB WAL: the same writes, no warning', async () => {
    const config = configFor(bounded);
    const watch = new BrokerMemoryWatch(config.amqp, config, capturingLogger().logger, { nodes: [bounded.broker.nodename] });
    // The rolled-over WAL files reach the queues' segments in the background: give it time.
    await waitFor(async () => (await watch.check()).length === 0, 60_000, 'no WAL warning', 1000);
    const read = await readNodesMemory(config.amqp, [bounded.broker.nodename]);
    expect('nodes' in read && read.nodes[0]!.binaryBytes + read.nodes[0]!.quorumEtsBytes).toBeLessThan(WAL_MEMORY_WARN_BYTES);
  });

  test('no answer from the management API: looked at again soon, a few times, then only on the regular interval', async () => {
    const closed = await freePort();
    const config = testConfig(randomNamespace('walmem'), { amqp: { url: large.broker.url, management: { url: `http://guest:guest@127.0.0.1:${closed}/` } }, lanes: [{ name: 'a' }] }, { defaults: 'shipped' });
    const { logger, lines } = capturingLogger();
    logger.level = 'debug';
    const watch = new BrokerMemoryWatch(config.amqp, config, logger, { retryMs: 50, intervalMs: 3_600_000 });
    const misses = () => lines.filter((l) => /broker memory not checked/.test(String(l.msg))).length;
    try {
      watch.start();
      await waitFor(() => misses() === 1 + WAL_RETRIES, 10_000, 'the retries');
      await sleep(500);
      expect(misses()).toBe(1 + WAL_RETRIES);
      expect(String(lines[0]!.managementApi)).toContain('ECONNREFUSED');
      expect(lines.some((l) => l.level === 'warn')).toBe(false);
    } finally {
      watch.stop();
    }
  });

  test('a config without quorum queues is not judged', async () => {
    const config = testConfig(randomNamespace('walmem'), {
      amqp: { url: large.broker.url, management: { url: large.managementUrl } },
      delay: { queueType: 'classic' },
      deadLetters: { queueType: 'classic' },
      lanes: [{ name: 'a' }],
    });
    expect(await new BrokerMemoryWatch(config.amqp, config, capturingLogger().logger, { nodes: [large.broker.nodename] }).check()).toEqual([]);
  });
});
