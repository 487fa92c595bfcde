/**
 * A daemon reads each broker node's file-handle limit from the management API at start and
 * warns when the delay ladder cannot fit (issue 13, "Defaults that fit the user"): a RabbitMQ
 * 3.10 node started from a shell keeps 1,024 handles (927 for queues), about 300 queues
 * holding messages, while the default ladder over 1 min – 1 day uses some 700 rungs. A node
 * with room gives no warning; a broker without the management API is noted, not judged.
 * Private nodes with the management plugin on a port of their own: the shared broker is not
 * touched.
 */
import type { ResolvedConfig } from '../../src/config/types';
import { Daemon } from '../../src/daemon';
import { handlesNeeded } from '../../src/topology/broker-capacity';
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
async function startAndCheck(url: string, managementUrl: string): Promise<{ lines: Line[]; config: ResolvedConfig }> {
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
  try {
    await daemon.start();
    // The node just booted: its figures come with the management plugin's first statistics round (5 s).
    await waitFor(() => lines.some((l) => /file.handle/.test(String(l.msg))), 30_000);
  } finally {
    await daemon.stop();
  }
  return { lines, config };
}

describe('the broker file-handle check at start', () => {
  test("a node with a shell's default limit: a warning naming the node, its limit, what the ladder needs and the fix", async () => {
    const node = await nodeWithManagement();
    nodes.push(node);
    const { lines, config } = await startAndCheck(node.broker.url, `http://guest:guest@127.0.0.1:${node.managementPort}/`);
    const warning = lines.find((l) => l.level === 'warn' && l.node === node.broker.nodename);
    expect(warning).toBeDefined();
    expect(warning).toMatchObject({ path: 'delay.tolerance', managementApi: `http://127.0.0.1:${node.managementPort}` });
    expect(String(warning!.msg)).toMatch(/can keep (\d+) file handles open/);
    const limit = Number(/can keep (\d+) file handles/.exec(String(warning!.msg))![1]);
    expect(limit).toBeLessThan(handlesNeeded(config.delay));
    expect(String(warning!.msg)).toContain('LimitNOFILE=65536');
    // The password never reaches a log line.
    expect(JSON.stringify(lines)).not.toContain('guest:guest');
  });

  test('a node with room (20,000 handles): no warning, the figures at info', async () => {
    const node = await nodeWithManagement(20_000);
    nodes.push(node);
    const { lines } = await startAndCheck(node.broker.url, `http://guest:guest@127.0.0.1:${node.managementPort}/`);
    expect(lines.filter((l) => l.level === 'warn' && /file handles/.test(String(l.msg)))).toEqual([]);
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
