/**
 * A broker that cannot keep the configured ladder's queues open gets a thinned ladder: fewer
 * rungs, every one of them a rung of the configured ladder, and a wider tolerance that the
 * rounding provably keeps (never early, late by less than max(unit, kept/2 × delay)).
 */
import type { ConfirmedPublisher } from '../../src/amqp/confirmed-publisher';
import { RUNG_UNANSWERED } from '../../src/amqp/rung-declarer';
import { loadConfig } from '../../src/config';
import { BrokerError } from '../../src/errors';
import { HEADER } from '../../src/message/headers';
import type { OutgoingMessage } from '../../src/message/types';
import { names } from '../../src/naming/names';
import { MessagePublisher } from '../../src/publish/message-publisher';
import { testConfig } from '../helpers/broker';
import { mulberry32 } from '../helpers/prng';
import { allowedLatenessMs, ladderRungs, ladderTolerance, rungIndex, thinLadder } from '../../src/delay/ladder';
import { ladderOf } from '../../src/delay/routing';
import { BROKER_RESERVED_HANDLES, fitLadders, fitWarning, HANDLE_HEADROOM, HANDLES_PER_QUEUE, ladderQueuesInSpan, MIN_RUNG_BUDGET, rungBudget } from '../../src/topology/broker-capacity';

const configOf = (overrides: Record<string, string> = {}) => loadConfig({ env: {}, overrides });

describe('thinLadder', () => {
  test('a subset of the fine ladder, ascending, with its first and top rungs, spaced within the wider tolerance', () => {
    const fine = ladderRungs(0.02, 100_000);
    const thinned = thinLadder(fine, 0.1);
    const inFine = new Set(fine);
    expect(thinned.every((r) => inFine.has(r))).toBe(true);
    expect(thinned).toEqual([...new Set(thinned)].sort((a, b) => a - b));
    expect(thinned[0]).toBe(1);
    expect(thinned[thinned.length - 1]).toBe(100_000);
    expect(ladderTolerance(thinned)).toBeLessThanOrEqual(0.1 + 1e-9);
    // About as few rungs as the wider ladder itself has.
    expect(thinned.length).toBeLessThanOrEqual(ladderRungs(0.1, 100_000).length * 1.1);
  });

  test('thinned to its own tolerance, a ladder stays as it is', () => {
    const fine = ladderRungs(0.02, 5_000);
    expect(thinLadder(fine, 0.02)).toEqual(fine);
  });
});

describe('ladderTolerance', () => {
  test.each([0.005, 0.02, 0.1, 0.5])("a configured ladder (τ = %d) keeps its own tolerance", (t) => {
    const rungs = ladderRungs(t, 2 ** 27 - 1);
    expect(ladderTolerance(rungs)).toBeLessThanOrEqual(t + 1e-12);
    expect(ladderTolerance(rungs, t)).toBe(t);
  });
});

describe('fitLadders', () => {
  test("the shipped defaults on a shell-started node (1,024 handles; 927 for queues): within the budget, a subset of the configured ladder, a wider tolerance", () => {
    const { delay, lanes } = configOf();
    const { budget } = rungBudget([{ name: 'shell', fdTotal: 1024, fdUsed: 0 }])!;
    expect(ladderQueuesInSpan(delay, lanes)).toBeGreaterThan(budget);
    const fit = fitLadders(delay, lanes, budget)!;
    expect(fit.rungsInSpan).toBeLessThanOrEqual(budget);
    expect(fit.configuredRungsInSpan).toBeGreaterThan(ladderQueuesInSpan(delay, lanes));
    const thinned = fit.ladders.get(delay.tolerance)!;
    const fine = new Set(ladderOf(delay.tolerance, delay.levels));
    expect(thinned.every((r) => fine.has(r))).toBe(true);
    const kept = fit.tolerances.get(delay.tolerance)!;
    expect(kept).toBeGreaterThan(delay.tolerance);
    // About three times fewer rungs: the tolerance widens by about as much, not more than twice that.
    expect(kept).toBeLessThan(delay.tolerance * 8);
  });

  test('property: every delay of 1,000 random ones rounds up to a rung of the thinned ladder, never early and late by less than max(unit, kept/2 × delay)', () => {
    const { delay, lanes } = configOf();
    const fit = fitLadders(delay, lanes, 100)!;
    const rungs = fit.ladders.get(delay.tolerance)!;
    const kept = fit.tolerances.get(delay.tolerance)!;
    const next = mulberry32(13);
    for (let i = 0; i < 1000; i++) {
      // Log-uniform from 1 unit to 1 day.
      const units = Math.ceil(86_400 ** next());
      const rung = rungs[rungIndex(rungs, units)]!;
      expect(rung).toBeGreaterThanOrEqual(units);
      const late = rung - units;
      expect(late < 1 || late < (kept / 2) * units + 1e-9).toBe(true);
    }
  });

  test('a broker with the handles for the configured ladder gets it unchanged; so do the binary levels', () => {
    const { delay, lanes } = configOf();
    expect(fitLadders(delay, lanes, Math.floor((65_536 - HANDLE_HEADROOM) / HANDLES_PER_QUEUE))).toBeUndefined();
    const binary = configOf({ 'delay.tolerance': '0' });
    expect(fitLadders(binary.delay, binary.lanes, MIN_RUNG_BUDGET)).toBeUndefined();
  });

  test("lanes of their own tolerance: every ladder is thinned, and their rungs together fit", () => {
    const { delay, lanes } = configOf({ lanes: JSON.stringify([{ name: 'a' }, { name: 'b', tolerance: '0.5%' }]) });
    expect(lanes.map((l) => l.tolerance)).toContain(0.005);
    const fit = fitLadders(delay, lanes, 200)!;
    expect([...fit.ladders.keys()].sort()).toEqual([0.005, 0.02]);
    expect(fit.rungsInSpan).toBeLessThanOrEqual(200);
    expect(fit.tolerances.get(0.005)!).toBeGreaterThan(0.005);
  });

  test('the warning names the node, its limit, both rung counts and the tolerance kept', () => {
    const { delay, lanes } = configOf();
    const node = { name: 'rabbit@a', fdTotal: 1024, fdUsed: 30 };
    const { budget } = rungBudget([node])!;
    const fit = fitLadders(delay, lanes, budget)!;
    const text = fitWarning(fit, node);
    expect(text).toContain('rabbit@a can keep 1024 file handles');
    expect(text).toContain(`${fit.configuredRungsInSpan} rungs`);
    expect(text).toContain(`orbit uses ${fit.rungsInSpan} of those rungs`);
    expect(text).toContain('2 % →');
    expect(text).toContain('LimitNOFILE=65536');
  });
});

describe('rungBudget', () => {
  test('from the node with the fewest handles; none when no node reports; never below the minimum', () => {
    // The management API reports a shell-started node's 1,024 (its file handle cache lets queues have 927).
    expect(rungBudget([{ name: 'a', fdTotal: 65_536, fdUsed: 1 }, { name: 'b', fdTotal: 1024, fdUsed: 1 }])).toEqual({
      budget: Math.floor((1024 - BROKER_RESERVED_HANDLES - HANDLE_HEADROOM) / HANDLES_PER_QUEUE),
      node: { name: 'b', fdTotal: 1024, fdUsed: 1 },
    });
    expect(rungBudget([{ name: 'a', fdTotal: undefined, fdUsed: undefined }])).toBeUndefined();
    expect(rungBudget([{ name: 'a', fdTotal: 100, fdUsed: 1 }])!.budget).toBe(MIN_RUNG_BUDGET);
  });
});

describe('a MessagePublisher on fitted ladders', () => {
  const config = testConfig('unit-fit', { delay: { unit: '1s', tolerance: '2%' }, lanes: [{ name: 'p' }] });
  const n = names('unit-fit');

  function publisher(sick?: string) {
    const sent: { routingKey: string; headers: Record<string, unknown> }[] = [];
    const fake = {
      publish(_exchange: string, routingKey: string, _body: Buffer, options: { headers: Record<string, unknown> }): Promise<void> {
        sent.push({ routingKey, headers: options.headers });
        return Promise.resolve();
      },
    } as unknown as ConfirmedPublisher;
    const rungs = {
      ensure: (queue: string) => (queue === sick ? Promise.reject(new BrokerError(`${queue} did not answer`, { code: RUNG_UNANSWERED })) : undefined),
      forget: () => undefined,
    };
    return { sent, mp: new MessagePublisher(fake, n, config.delay, config.lanes, rungs, { longestHopMs: 1e12 }) };
  }

  function outgoing(delayMs: number): OutgoingMessage {
    return { id: 'm', lane: 'p', body: Buffer.from('{}'), priority: 0, dueAt: Date.now() + delayMs, delayMs, runs: 0, attempt: 0, generation: 0, headers: {} };
  }

  const fit = fitLadders(config.delay, config.lanes, 100)!;
  const thinned = fit.ladders.get(0.02)!;
  const kept = fit.tolerances.get(0.02)!;

  test('routes to the thinned rungs, with the kept tolerance in the bound it writes; back on the configured ladder once unfitted', async () => {
    const { sent, mp } = publisher();
    mp.fitLadders(fit, 1e12);
    expect(mp.ladderOf('p')).toEqual({ tolerance: kept, rungs: thinned });
    const delayMs = 3_600_000;
    await mp.schedule(outgoing(delayMs));
    const rung = thinned[rungIndex(thinned, delayMs / 1000)]!;
    expect(sent[0]!.routingKey).toBe(n.rung(rung * 1000, false));
    expect(sent[0]!.headers[HEADER.allowed]).toBe(allowedLatenessMs(delayMs, kept, 1000));
    mp.fitLadders(undefined, 1e12);
    await mp.schedule(outgoing(delayMs));
    const fine = ladderOf(0.02, config.delay.levels);
    expect(sent[1]!.routingKey).toBe(n.rung(fine[rungIndex(fine, delayMs / 1000)]! * 1000, false));
    expect(mp.ladderOf('p').tolerance).toBe(0.02);
  });

  test('a sick rung is detoured to the next rung of the thinned ladder', async () => {
    const delayMs = 3_600_000;
    const i = rungIndex(thinned, delayMs / 1000);
    const { sent, mp } = publisher(n.rung(thinned[i]! * 1000, false));
    mp.fitLadders(fit, 1e12);
    await mp.schedule(outgoing(delayMs));
    expect(sent.map((s) => s.routingKey)).toEqual([n.rung(thinned[i + 1]! * 1000, false)]);
  });

  test('the longest hop follows the kept tolerance (a delay past it travels in hops)', async () => {
    const { sent, mp } = publisher();
    mp.fitLadders(fit, 600_000);
    await mp.schedule(outgoing(3_600_000));
    expect(sent[0]!.headers[HEADER.waypoint]).toBe(1);
  });
});
