import { handleShortfall, ladderNeeds, parseNodeHandles, type LadderRun, type NodeHandles } from '../../bench/lib/broker-handles';
import { fillConfig } from '../../bench/fill/fill';
import { steadyConfig } from '../../bench/steady/loop';
import { WORKLOADS } from '../../bench/steady/workload';
import { HANDLE_HEADROOM, HANDLES_PER_QUEUE, ladderQueuesInSpan } from '../../src/topology/broker-capacity';

const URL = 'amqp://guest:guest@127.0.0.1:5672';

/** What the shared test broker reports: a node started from a shell (1,024 handles, 927 for queues). */
const SHELL_NODE: NodeHandles = { node: 'rabbit@localhost', limit: 927, used: 40, amqpPorts: [5672] };

function steadyRun(variant: 'unbundled' | 'bundled', tolerance: string): LadderRun {
  const job = { namespace: 'check', amqpUrl: URL, variant, queueType: 'quorum' as const, concurrency: 200, extra: {}, tolerance };
  return { name: `${variant} ${tolerance}`, config: steadyConfig(job).config, spanMs: WORKLOADS[variant].spanMs };
}

function fillRun(tolerance: string): LadderRun {
  const job = { namespace: 'check', amqpUrl: URL, queueType: 'classic' as const, bundleMax: 100, lingerMs: 100, extra: {}, tolerance };
  return { name: `fill ${tolerance}`, config: fillConfig(job).config, spanMs: [60_000, 86_400_000] };
}

describe('the ladder benchmarks refuse a broker that cannot hold their rungs', () => {
  test("the bundled steady state at 2 % over three decades (session 24's wedge: ~380 quorum rungs) is refused on a shell-started node", () => {
    const run = steadyRun('bundled', '2%');
    const rungs = ladderQueuesInSpan(run.config.delay, run.config.lanes, run.spanMs);
    expect(rungs * HANDLES_PER_QUEUE + HANDLE_HEADROOM).toBeGreaterThan(927);
    const why = handleShortfall(SHELL_NODE, [run], URL);
    expect(why).toContain(`"bundled 2%" would use up to ${rungs} ladder queues`);
    expect(why).toContain('rabbit@localhost can keep 927 open');
    expect(why).toContain('ORBIT_BENCH_RABBITMQ_NODE');
  });

  test('fill at 2 % is refused there too; a node with 20,000 handles runs both', () => {
    const runs = [steadyRun('bundled', '2%'), fillRun('2%')];
    expect(handleShortfall(SHELL_NODE, [fillRun('2%')], URL)).toContain('"fill 2%"');
    expect(handleShortfall({ ...SHELL_NODE, limit: 19_903 }, runs, URL)).toBeUndefined();
  });

  test('binary levels (tolerance 0) and the unbundled 1–8 s loop need no check: few queues', () => {
    expect(ladderNeeds([steadyRun('unbundled', '0'), steadyRun('bundled', '0'), fillRun('0')])).toEqual([]);
    // Eight whole seconds: a handful of rungs, well within a shell's limit.
    const unbundled = steadyRun('unbundled', '2%');
    expect(ladderNeeds([unbundled])[0]!.rungs).toBeLessThanOrEqual(8);
    expect(handleShortfall(SHELL_NODE, [unbundled], URL)).toBeUndefined();
  });

  test('the worst run is the one named', () => {
    const why = handleShortfall(SHELL_NODE, [steadyRun('unbundled', '2%'), fillRun('10%'), fillRun('2%')], URL);
    expect(why).toContain('"fill 2%"');
  });

  test('a CLI that reads another node than the AMQP URL reaches is refused, whatever its limit', () => {
    const why = handleShortfall({ ...SHELL_NODE, limit: 65_536 }, [fillRun('2%')], 'amqp://guest:guest@127.0.0.1:5697');
    expect(why).toContain('listens for AMQP on 5672');
    expect(why).toContain('port 5697');
  });
});

describe('parseNodeHandles', () => {
  test("reads rabbitmq-diagnostics status's JSON (3.10.8's shape)", () => {
    const json = JSON.stringify({
      file_descriptors: { sockets_limit: 832, sockets_used: 0, total_limit: 927, total_used: 2 },
      listeners: [
        { interface: '127.0.0.1', node: 'rabbit@localhost', port: 25672, protocol: 'clustering' },
        { interface: '127.0.0.1', node: 'rabbit@localhost', port: 5672, protocol: 'amqp' },
      ],
    });
    expect(parseNodeHandles(json)).toEqual({ node: 'rabbit@localhost', limit: 927, used: 2, amqpPorts: [5672] });
  });

  test('an answer without the limit is an error, not a pass', () => {
    expect(() => parseNodeHandles('{"listeners":[]}')).toThrow(/total_limit/);
  });
});
