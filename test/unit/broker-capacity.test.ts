import { loadConfig } from '../../src/config';
import { describeUrl, managementUrls, parseNodes } from '../../src/amqp/read-broker-nodes';
import { capacityWarnings, handlesNeeded, HANDLES_PER_QUEUE, HANDLE_HEADROOM, ladderQueuesInSpan } from '../../src/topology/broker-capacity';
import { ladderRungs } from '../../src/delay/ladder';

const delay = (overrides: Record<string, string> = {}) => loadConfig({ env: {}, overrides }).delay;

describe('the handles a layout needs', () => {
  test('the ladder at 2 % (the default) over 1 min – 1 day: every rung in the span, ~3 handles each', () => {
    const d = delay();
    const inSpan = ladderRungs(0.02, 86_400).filter((r) => r >= 60).length;
    expect(ladderQueuesInSpan(d)).toBe(inSpan);
    // ~40 whole units from 60 to 100, then ~69 rungs per doubling up to a day.
    expect(inSpan).toBeGreaterThan(650);
    expect(inSpan).toBeLessThan(800);
    expect(handlesNeeded(d)).toBe(inSpan * HANDLES_PER_QUEUE + HANDLE_HEADROOM);
  });

  test('a coarser tolerance or unit needs fewer; binary levels need one queue per level', () => {
    expect(ladderQueuesInSpan(delay({ 'delay.tolerance': '10%' }))).toBeLessThan(ladderQueuesInSpan(delay()) / 3);
    expect(ladderQueuesInSpan(delay({ 'delay.unit': '1m' }))).toBeLessThan(ladderQueuesInSpan(delay()));
    // The span is clamped to the longest delay: 2^10 − 1 s is less than an hour.
    expect(ladderQueuesInSpan(delay({ 'delay.levels': '10' }))).toBe(ladderRungs(0.02, 1023).filter((r) => r >= 60).length);
    const binary = delay({ 'delay.tolerance': '0' });
    expect(ladderQueuesInSpan(binary)).toBe(0);
    expect(handlesNeeded(binary)).toBe(binary.levels * HANDLES_PER_QUEUE + HANDLE_HEADROOM);
  });
});

describe('capacityWarnings', () => {
  test("a node at a shell's default limit (927 of 1,024) cannot hold the default ladder: the warning names node, limit and fix", () => {
    const [w, ...rest] = capacityWarnings([{ name: 'rabbit@a', fdTotal: 927, fdUsed: 40 }], delay());
    expect(rest).toEqual([]);
    expect(w).toMatchObject({ path: 'delay.tolerance', node: 'rabbit@a' });
    expect(w!.message).toContain('rabbit@a can keep 927 file handles');
    expect(w!.message).toContain('LimitNOFILE=65536');
    expect(w!.message).toContain(`${handlesNeeded(delay())} with headroom`);
  });

  test("Debian's unit or the official image (65,536) holds it; binary levels fit a small limit", () => {
    expect(capacityWarnings([{ name: 'rabbit@a', fdTotal: 65_536, fdUsed: 40 }], delay())).toEqual([]);
    expect(capacityWarnings([{ name: 'rabbit@a', fdTotal: 927, fdUsed: 40 }], delay({ 'delay.tolerance': '0' }))).toEqual([]);
  });

  test('each node of a cluster is judged on its own; a node that reports no limit is not judged', () => {
    const nodes = [
      { name: 'rabbit@a', fdTotal: 65_536, fdUsed: 100 },
      { name: 'rabbit@b', fdTotal: 1_024, fdUsed: 100 },
      { name: 'rabbit@c', fdTotal: undefined, fdUsed: undefined },
    ];
    expect(capacityWarnings(nodes, delay()).map((w) => w.node)).toEqual(['rabbit@b']);
  });

  test('a node with room but already using most of its handles is warned about too', () => {
    const [w] = capacityWarnings([{ name: 'rabbit@a', fdTotal: 10_000, fdUsed: 9_000 }], delay());
    expect(w!.message).toContain('already uses 9000 of its 10000 file handles');
  });
});

describe('reading the management API', () => {
  test('URLs derive from each AMQP URL: same host and credentials, the plugin port (TLS: https, 15671)', () => {
    const amqp = loadConfig({ env: { ORBIT_AMQP_URL: 'amqp://u:p%40ss@mq-1:5672/vh,amqps://mq-2,amqp://[::1]' } }).amqp;
    expect(managementUrls(amqp)).toEqual(['http://u:p%40ss@mq-1:15672/', 'https://guest:guest@mq-2:15671/', 'http://guest:guest@[::1]:15672/']);
    expect(managementUrls(amqp).map(describeUrl)).toEqual(['http://mq-1:15672', 'https://mq-2:15671', 'http://[::1]:15672']);
    const set = loadConfig({ env: { ORBIT_AMQP_MANAGEMENT_URL: 'https://ops:x@mgmt.example:443/rabbit/' } }).amqp;
    expect(managementUrls(set)).toEqual(['https://ops:x@mgmt.example/rabbit/']);
  });

  test('/api/nodes answers parse to limits; missing figures stay undefined; anything else is refused', () => {
    expect(parseNodes('[{"name":"rabbit@a","fd_total":927,"fd_used":12},{"name":"rabbit@b"}]')).toEqual([
      { name: 'rabbit@a', fdTotal: 927, fdUsed: 12 },
      { name: 'rabbit@b', fdTotal: undefined, fdUsed: undefined },
    ]);
    expect(() => parseNodes('{"error":"not_authorised"}')).toThrow('not a list of nodes');
    expect(() => parseNodes('<html>')).toThrow();
  });
});
