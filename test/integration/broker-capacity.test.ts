/**
 * A daemon reads each broker node's file-handle limit from the management API at start and
 * warns when the delay ladder cannot fit (issue 13, "Defaults that fit the user"): a RabbitMQ
 * 3.10 node started from a shell keeps 1,024 handles (927 for queues), about 300 queues
 * holding messages, while the default ladder over 1 min – 1 day uses some 700 rungs. A node
 * with room gives no warning; a broker without the management API is noted, not judged.
 * A node that cannot keep the configured ladder open gets a thinned one, in the daemon and in
 * a Scheduler's bulk load alike, so it keeps answering (session 24 wedged a node with 380
 * quorum rungs).
 * Private nodes with the management plugin on a port of their own: the shared broker is not
 * touched.
 */
import type { ResolvedConfig } from '../../src/config/types';
import { readBrokerNodes } from '../../src/amqp/read-broker-nodes';
import { Daemon } from '../../src/daemon';
import { ladderRungs } from '../../src/delay/ladder';
import { names } from '../../src/naming/names';
import { Scheduler } from '../../src/publish/scheduler';
import { handlesNeeded, rungBudget } from '../../src/topology/broker-capacity';
import { randomNamespace, testConfig } from '../helpers/broker';
import { freePort, startPrivateBroker, type PrivateBroker } from '../helpers/private-broker';
import { capturingLogger } from '../helpers/capturing-logger';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

type Line = Record<string, unknown>;


interface Node {
  broker: PrivateBroker;
  managementPort: number;
}

async function nodeWithManagement(fileHandles?: number): Promise<Node> {
  const managementPort = await freePort();
  const broker = await startPrivateBroker(90_000, {
    rabbitmq: 3,
    plugins: ['rabbitmq_management'],
    extraConfig: [`management.tcp.port = ${managementPort}`, 'management.tcp.ip = 127.0.0.1'],
    ...(fileHandles ? { fileHandles } : {}),
  });
  return { broker, managementPort };
}

// What the daemons declare goes with the nodes, which are private to this file.
const nodes: Node[] = [];

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.broker.stop()));
});

/** Starts a daemon with the default delay settings against `url`, waits for the capacity check's line, stops it. */
async function startAndCheck(url: string, managementUrl: string): Promise<{ lines: Line[]; config: ResolvedConfig; ladderTolerance: number | undefined }> {
  const ns = randomNamespace('cap');
  const config = testConfig(ns, {
    amqp: { url, reconnect: '500ms', management: { url: managementUrl } },
    // The built-in defaults (tolerance 2 %, levels from the unit), not the tests' usual 8 levels.
    delay: { unit: '1s' },
    lanes: [{ name: 'a' }],
  });
  expect(config.delay.tolerance).toBe(0.02);
  const { logger, lines } = capturingLogger();
  const daemon = new Daemon({ config, handlers: { a: async () => ({ done: true }) }, logger });
  let ladderTolerance: number | undefined;
  try {
    await daemon.start();
    // The node just booted: its figures come with the management plugin's first statistics round (5 s).
    await waitFor(() => lines.some((l) => /file.handle/.test(String(l.msg))), 30_000);
    const metric = await daemon.metrics.registry.getSingleMetric('orbit_ladder_tolerance')!.get();
    ladderTolerance = metric.values.find((v) => v.labels.lane === 'a')?.value;
  } finally {
    await daemon.stop();
  }
  return { lines, config, ladderTolerance };
}

describe('the broker file-handle check at start', () => {
  test("a node with a shell's default limit: a warning naming the node, its limit, what the ladder needs and the fix", async () => {
    const node = await nodeWithManagement();
    nodes.push(node);
    const { lines, config, ladderTolerance } = await startAndCheck(node.broker.url, `http://guest:guest@127.0.0.1:${node.managementPort}/`);
    const warning = lines.find((l) => l.level === 'warn' && l.node === node.broker.nodename);
    expect(warning).toBeDefined();
    expect(warning).toMatchObject({ path: 'delay.tolerance', managementApi: `http://127.0.0.1:${node.managementPort}` });
    expect(String(warning!.msg)).toMatch(/can keep (\d+) file handles open/);
    const limit = Number(/can keep (\d+) file handles/.exec(String(warning!.msg))![1]);
    expect(limit).toBeLessThan(handlesNeeded(config.delay));
    expect(String(warning!.msg)).toContain('LimitNOFILE=65536');
    // The daemon thinned its ladder to the node, and says how far in the metric and the line.
    expect(warning).toMatchObject({ rungBudget: rungBudget([{ name: 'n', fdTotal: limit, fdUsed: 0 }])!.budget });
    expect(warning!.rungs as number).toBeLessThanOrEqual(warning!.rungBudget as number);
    expect(ladderTolerance).toBeGreaterThan(0.02);
    expect((warning!.tolerances as Record<string, number>)['0.02']).toBeCloseTo(ladderTolerance!, 4);
    // The password never reaches a log line.
    expect(JSON.stringify(lines)).not.toContain('guest:guest');
  });

  test('a node with room (20,000 handles): no warning, the figures at info', async () => {
    const node = await nodeWithManagement(20_000);
    nodes.push(node);
    const { lines, ladderTolerance } = await startAndCheck(node.broker.url, `http://guest:guest@127.0.0.1:${node.managementPort}/`);
    expect(lines.filter((l) => l.level === 'warn' && /file handles/.test(String(l.msg)))).toEqual([]);
    // The configured ladder, unthinned.
    expect(ladderTolerance).toBe(0.02);
    const info = lines.find((l) => l.msg === 'broker file handles checked');
    expect(info).toBeDefined();
    expect(String((info!.nodes as string[])[0])).toMatch(new RegExp(`^${node.broker.nodename} \\d+/(\\d+)$`));
    expect(Number(/\/(\d+)$/.exec((info!.nodes as string[])[0]!)![1])).toBeGreaterThan(10_000);
  });

  test('no management API: noted at info, the daemon starts all the same', async () => {
    const node = nodes[0]!;
    const closed = await freePort();
    const { lines } = await startAndCheck(node.broker.url, `http://guest:guest@127.0.0.1:${closed}/`);
    const info = lines.find((l) => /not checked/.test(String(l.msg)));
    expect(info).toMatchObject({ level: 'info' });
    expect(String(info!.managementApi)).toContain(`127.0.0.1:${closed}: ECONNREFUSED`);
    expect(lines.some((l) => l.msg === 'orbit started')).toBe(true);
  });
});

describe('a bulk load on a node that cannot keep the configured ladder open', () => {
  test("the shipped defaults (2 %, quorum rungs) on a shell-started node: the Scheduler declares the thinned ladder's rungs only, every delay lands in one, and the node keeps answering", async () => {
    const node = await nodeWithManagement();
    nodes.push(node);
    const ns = randomNamespace('capfit');
    const config = testConfig(
      ns,
      {
        amqp: { url: node.broker.url, reconnect: '500ms', management: { url: `http://guest:guest@127.0.0.1:${node.managementPort}/` } },
        // The built-in delay settings (the tests' usual 8 levels stop at 255 s); unbundled, so each message is one AMQP message.
        delay: { unit: '1s' },
        lanes: [{ name: 'a', bundle: { max: 1 } }],
      },
      { defaults: 'shipped' },
    );
    expect(config.delay).toMatchObject({ tolerance: 0.02, queueType: 'quorum' });
    expect(2 ** config.delay.levels).toBeGreaterThan(86_400);
    // The node reports its limit with the management plugin's first statistics round.
    let limit: number | undefined;
    await waitFor(async () => {
      const result = await readBrokerNodes(config.amqp);
      limit = 'nodes' in result ? result.nodes[0]?.fdTotal : undefined;
      return limit !== undefined;
    }, 30_000, 'the node to report its file-handle limit');
    const { budget } = rungBudget([{ name: node.broker.nodename, fdTotal: limit, fdUsed: 0 }])!;
    // The configured ladder has three times the rungs this node can keep open.
    const configured = ladderRungs(0.02, 86_400).length;
    expect(configured).toBeGreaterThan(3 * budget);

    const { logger, lines } = capturingLogger();
    const scheduler = new Scheduler({ config, logger });
    try {
      // What `orbit seed` does before a load spread over a day: every rung below a day, at once.
      const declared = await scheduler.prepareRungs(86_400_000, 'a');
      expect(declared).toBeLessThanOrEqual(budget);
      expect(declared).toBeGreaterThan(budget / 2);
      expect(lines.find((l) => l.level === 'warn' && l.node === node.broker.nodename)).toMatchObject({ rungBudget: budget });
      // 2,000 messages, log-uniform over 1 min – 1 day: each to a rung already declared.
      const delays = Array.from({ length: 2000 }, (_, i) => Math.round(60_000 * 1440 ** ((i * 0.6180339887) % 1)));
      await Promise.all(delays.map((delay, i) => scheduler.publish('a', { i }, { id: `m${i}`, delay })));
    } finally {
      await scheduler.close();
    }
    const rungQueues = async () =>
      (await node.broker.ctl('-q', 'list_queues', 'name', 'messages', '--no-table-headers'))
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([name]) => name !== undefined && names(ns).rungTtlOf(name) !== undefined);
    expect((await rungQueues()).length).toBeLessThanOrEqual(budget);
    // Every message rests in a rung (a quorum queue's count follows its log with a short lag).
    await waitFor(async () => (await rungQueues()).reduce((sum, [, messages]) => sum + Number(messages), 0) === 2000, 30_000, 'the rungs to hold all 2,000');
    // It answers: its CLI, and its file handles stay below the limit.
    const status = JSON.parse(await node.broker.ctl('status', '--formatter', 'json')) as { file_descriptors: { total_used: number; total_limit: number } };
    expect(status.file_descriptors.total_used).toBeLessThan(status.file_descriptors.total_limit);
  });
});
