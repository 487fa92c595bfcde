import type { QueueType, ResolvedConfig } from '../../src/config/types';
import {
  bitWords,
  delayUnits,
  delayUntil,
  destinationOf,
  levelTtlMs,
  maxDelayMs,
  popcount,
  routeDelay,
} from '../../src/delay/routing';
import { DelayOutOfRangeError, InvalidMessageError } from '../../src/errors';
import { buildTopology, type QueueSpec, type Topology } from '../../src/topology/build';
import { names } from '../../src/naming/names';
import { topologyConfig } from '../helpers/topology-config';
import { mulberry32 } from '../helpers/prng';

const n = names('ns');

/** Number of set bits, computed independently of the module under test. */
function bits(units: number): number {
  return [...units.toString(2)].filter((c) => c === '1').length;
}

/** Levels whose bit is set in `units`, highest first. */
function setLevels(units: number): number[] {
  const out: number[] = [];
  for (let level = Math.floor(Math.log2(Math.max(units, 1))) + 1; level >= 0; level--) {
    if (Math.floor(units / 2 ** level) % 2 === 1) out.push(level);
  }
  return out;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

describe('names', () => {
  it('derives every name from the namespace', () => {
    expect(n.namespace).toBe('ns');
    expect(n.delayLevel(0)).toBe('ns.delay.0');
    expect(n.delayLevel(27)).toBe('ns.delay.27');
    expect(n.deliver).toBe('ns.deliver');
    expect(n.unroutable).toBe('ns.unroutable');
    expect(n.dead).toBe('ns.dead');
    expect(n.lane('fast')).toBe('ns.lane.fast');
  });
});

describe('delay arithmetic', () => {
  const delay = { unitMs: 1000, levels: 8 };

  it('max delay is (2^levels − 1) × unit and level TTL is 2^L × unit', () => {
    expect(maxDelayMs(delay)).toBe(255_000);
    expect(maxDelayMs({ unitMs: 1, levels: 1 })).toBe(1);
    expect(maxDelayMs({ unitMs: 1000, levels: 28 })).toBe(268_435_455_000);
    expect(levelTtlMs(0, 1000)).toBe(1000);
    expect(levelTtlMs(7, 1000)).toBe(128_000);
    expect(levelTtlMs(39, 1)).toBe(549_755_813_888);
  });

  it.each([
    [0, 0],
    [0.001, 1],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [1999.5, 2],
    [2000, 2],
    [2001, 3],
    [254_001, 255],
    [255_000, 255],
  ])('rounds %p ms up to %p units of 1000 ms', (ms, units) => {
    expect(delayUnits(ms, delay)).toBe(units);
  });

  it('accepts the max delay and refuses one ms more with DelayOutOfRangeError', () => {
    expect(delayUnits(255_000, delay)).toBe(255);
    const err = thrown(() => delayUnits(255_001, delay));
    expect(err).toBeInstanceOf(DelayOutOfRangeError);
    expect(err).toBeInstanceOf(InvalidMessageError);
    expect((err as DelayOutOfRangeError).code).toBe('DELAY_OUT_OF_RANGE');
    expect((err as Error).message).toContain('255000 ms');
    expect(() => routeDelay(255_001, 'fast', delay, n)).toThrow(DelayOutOfRangeError);
    expect(() => routeDelay(Number.MAX_SAFE_INTEGER, 'fast', delay, n)).toThrow(DelayOutOfRangeError);
  });

  it.each([[-1], [-0.5], [NaN], [Infinity], [-Infinity], ['5' as unknown as number], [undefined as unknown as number]])(
    'refuses %p with InvalidMessageError BAD_DELAY (not out-of-range)',
    (ms) => {
      const err = thrown(() => routeDelay(ms, 'fast', delay, n));
      expect(err).toBeInstanceOf(InvalidMessageError);
      expect(err).not.toBeInstanceOf(DelayOutOfRangeError);
      expect((err as InvalidMessageError).code).toBe('BAD_DELAY');
    },
  );

  it('delayUntil is never negative', () => {
    expect(delayUntil(1500, 1000)).toBe(500);
    expect(delayUntil(1000, 1000)).toBe(0);
    expect(delayUntil(500, 1000)).toBe(0);
  });
});

describe('routeDelay', () => {
  const levels = 8;
  const delay = { unitMs: 1000, levels };

  it('sends delay 0 straight to the deliver exchange with all-zero bits', () => {
    expect(routeDelay(0, 'fast', delay, n)).toEqual({
      exchange: 'ns.deliver',
      routingKey: '0.0.0.0.0.0.0.0.fast',
      delayMs: 0,
      hops: 0,
    });
  });

  it('sends the max delay to the top level with every bit set', () => {
    expect(routeDelay(255_000, 'fast', delay, n)).toEqual({
      exchange: 'ns.delay.7',
      routingKey: '1.1.1.1.1.1.1.1.fast',
      delayMs: 255_000,
      hops: 8,
    });
  });

  it('reports the rounded delay', () => {
    expect(routeDelay(1, 'fast', delay, n)).toMatchObject({ exchange: 'ns.delay.0', routingKey: '0.0.0.0.0.0.0.1.fast', delayMs: 1000 });
    expect(routeDelay(1001, 'fast', delay, n)).toMatchObject({ exchange: 'ns.delay.1', routingKey: '0.0.0.0.0.0.1.0.fast', delayMs: 2000 });
    expect(routeDelay(5000, 'fast', delay, n)).toMatchObject({ exchange: 'ns.delay.2', routingKey: '0.0.0.0.0.1.0.1.fast', hops: 2 });
  });

  it('for every delay of 8 levels: exchange of the highest bit, hops = popcount, key = bits MSB first + destination', () => {
    for (let units = 0; units < 2 ** levels; units++) {
      const route = routeDelay(units * 1000, 'fast', delay, n);
      const words = route.routingKey.split('.');
      expect(words).toHaveLength(levels + 1);
      expect(words[levels]).toBe('fast');
      expect(words.slice(0, levels).every((w) => w === '0' || w === '1')).toBe(true);
      expect(parseInt(words.slice(0, levels).join(''), 2)).toBe(units);
      expect(route.hops).toBe(bits(units));
      expect(popcount(units)).toBe(bits(units));
      expect(route.delayMs).toBe(units * 1000);
      expect(route.exchange).toBe(units === 0 ? 'ns.deliver' : `ns.delay.${units.toString(2).length - 1}`);
      expect(destinationOf(route.routingKey, levels)).toBe('fast');
    }
  });

  it('bitWords pads to the level count', () => {
    expect(bitWords(0, 3)).toBe('0.0.0');
    expect(bitWords(6, 3)).toBe('1.1.0');
    expect(bitWords(1, 5)).toBe('0.0.0.0.1');
  });

  it('destinationOf keeps every word after the bits', () => {
    expect(destinationOf('0.1.1.fast', 3)).toBe('fast');
    expect(destinationOf(routeDelay(3000, 'a.b', delay, n).routingKey, levels)).toBe('a.b');
  });

  it.each([28, 40])('is exact for large values with %p levels', (lv) => {
    for (const unitMs of [1, 1000]) {
      const d = { unitMs, levels: lv };
      const top = routeDelay((2 ** lv - 1) * unitMs, 'fast', d, n);
      expect(top.exchange).toBe(`ns.delay.${lv - 1}`);
      expect(top.hops).toBe(lv);
      expect(top.routingKey).toBe(`${Array(lv).fill('1').join('.')}.fast`);
      expect(top.delayMs).toBe((2 ** lv - 1) * unitMs);
      expect(() => routeDelay((2 ** lv - 1) * unitMs + 1, 'fast', d, n)).toThrow(DelayOutOfRangeError);

      // Around every power of two, where log2 rounding could pick the wrong level.
      for (let k = 1; k < lv; k++) {
        const below = routeDelay((2 ** k - 1) * unitMs, 'fast', d, n);
        expect(below.exchange).toBe(`ns.delay.${k - 1}`);
        expect(below.hops).toBe(k);
        const at = routeDelay(2 ** k * unitMs, 'fast', d, n);
        expect(at.exchange).toBe(`ns.delay.${k}`);
        expect(at.hops).toBe(1);
        expect(at.routingKey.split('.').indexOf('1')).toBe(lv - 1 - k);
      }

      const random = mulberry32(lv * 7 + unitMs);
      for (let i = 0; i < 200; i++) {
        const units = Math.floor(random() * 2 ** lv);
        const route = routeDelay(units * unitMs, 'fast', d, n);
        const key = route.routingKey.split('.').slice(0, lv).join('');
        expect(BigInt(`0b${key}`)).toBe(BigInt(units));
        expect(route.hops).toBe(bits(units));
        expect(route.delayMs).toBe(units * unitMs);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------
// Simulation of the broker topology: routes a message through exchange→exchange and
// exchange→queue bindings and dead-lettering, as RabbitMQ would.
// ---------------------------------------------------------------------------------------

/** AMQP topic matching: words separated by dots, `*` = exactly one word, `#` = zero or more. */
function topicMatches(pattern: string, key: string): boolean {
  const p = pattern.split('.');
  const k = key.split('.');
  const match = (i: number, j: number): boolean => {
    if (i === p.length) return j === k.length;
    if (p[i] === '#') return match(i + 1, j) || (j < k.length && match(i, j + 1));
    return j < k.length && (p[i] === '*' || p[i] === k[j]) && match(i + 1, j + 1);
  };
  return match(0, 0);
}

describe('topicMatches (the test matcher itself)', () => {
  it.each([
    ['*.1.#', '0.1.fast', true],
    ['*.1.#', '0.1', true],
    ['*.1.#', '1.0.fast', false],
    ['1.#', '1', true],
    ['#.fast', 'fast', true],
    ['#.fast', '0.1.fast', true],
    ['#.fast', '0.1.fast.x', false],
    ['#.fast', '0.1.faster', false],
    ['*', 'a.b', false],
    ['a.*.c', 'a.b.c', true],
    ['a.*.c', 'a.c', false],
    ['#', '', true],
  ])('%p vs %p → %p', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });
});

const bySource = new WeakMap<Topology, Map<string, Topology['bindings'][number][]>>();

function bindingsFrom(topology: Topology, exchange: string): Topology['bindings'][number][] {
  let index = bySource.get(topology);
  if (!index) {
    index = new Map();
    for (const b of topology.bindings) index.set(b.source, [...(index.get(b.source) ?? []), b]);
    bySource.set(topology, index);
  }
  return index.get(exchange) ?? [];
}

/** Queues a message published to `exchange` with `key` ends up in (following e2e bindings and alternate exchanges). */
function route(topology: Topology, exchange: string, key: string, depth = 0): string[] {
  if (depth > 100) throw new Error('exchange binding loop');
  const ex = topology.exchanges.find((e) => e.name === exchange);
  if (!ex) throw new Error(`no exchange ${exchange}`);
  const out: string[] = [];
  for (const b of bindingsFrom(topology, exchange)) {
    if (ex.type === 'topic' && !topicMatches(b.pattern, key)) continue;
    if (b.kind === 'queue') out.push(b.destination);
    else out.push(...route(topology, b.destination, key, depth + 1));
  }
  const alternate = ex.arguments['alternate-exchange'];
  if (out.length === 0 && typeof alternate === 'string') return route(topology, alternate, key, depth + 1);
  return out;
}

interface Journey {
  readonly delayQueues: QueueSpec[];
  readonly waitedMs: number;
  readonly final: QueueSpec;
}

/** Follows one message from `exchange` until it rests in a queue that does not dead-letter. */
function walk(topology: Topology, exchange: string, key: string): Journey {
  const queue = (name: string): QueueSpec => {
    const q = topology.queues.find((x) => x.name === name);
    if (!q) throw new Error(`binding to undeclared queue ${name}`);
    return q;
  };
  const delayQueues: QueueSpec[] = [];
  let waitedMs = 0;
  let targets = route(topology, exchange, key);
  for (let step = 0; step < 100; step++) {
    // Exactly one copy: neither lost nor duplicated at any step.
    if (targets.length !== 1) throw new Error(`key ${key} routed to ${targets.length} queues: ${targets.join(', ')}`);
    const q = queue(targets[0]!);
    const dlx = q.arguments['x-dead-letter-exchange'];
    if (typeof dlx !== 'string') return { delayQueues, waitedMs, final: q };
    const ttl = q.arguments['x-message-ttl'];
    if (typeof ttl !== 'number') throw new Error(`${q.name} dead-letters without a TTL`);
    delayQueues.push(q);
    waitedMs += ttl;
    const dlKey = q.arguments['x-dead-letter-routing-key'];
    targets = route(topology, dlx, typeof dlKey === 'string' ? dlKey : key);
  }
  throw new Error('message never came to rest');
}

function topologyFor(levels: number, unit: string, queueType: QueueType = 'classic'): { config: ResolvedConfig; topology: Topology } {
  const config = topologyConfig(levels, unit, queueType, [{ name: 'fast' }, { name: 'slow', maxPriority: 0 }, { name: 'x-1' }]);
  return { config, topology: buildTopology(config) };
}

describe('simulated topology', () => {
  function expectJourney(topology: Topology, config: ResolvedConfig, delayMs: number, lane: string): void {
    const r = routeDelay(delayMs, lane, config.delay, n);
    const units = delayUnits(delayMs, config.delay);
    const journey = walk(topology, r.exchange, r.routingKey);
    expect(journey.delayQueues.map((q) => q.level)).toEqual(setLevels(units));
    expect(journey.delayQueues.map((q) => q.name)).toEqual(setLevels(units).map((l) => `ns.delay.${l}`));
    expect(journey.delayQueues.every((q) => q.role === 'delay')).toBe(true);
    expect(journey.waitedMs).toBe(r.delayMs);
    expect(journey.waitedMs).toBe(units * config.delay.unitMs);
    expect(journey.waitedMs).toBeGreaterThanOrEqual(delayMs);
    expect(journey.delayQueues).toHaveLength(r.hops);
    expect(journey.final).toMatchObject({ name: `ns.lane.${lane}`, role: 'lane', lane });
  }

  it('walks every delay 0..255 (8 levels, unit 1 ms) to its lane through exactly its set bits', () => {
    const { config, topology } = topologyFor(8, '1ms');
    for (let delayMs = 0; delayMs < 256; delayMs++) {
      expectJourney(topology, config, delayMs, i2lane(delayMs));
    }
  });

  it('walks every unit count 0..255 with sub-unit delays (8 levels, unit 1 s)', () => {
    const { config, topology } = topologyFor(8, '1s');
    for (let units = 0; units < 256; units++) {
      // Just past the previous unit boundary: rounds up to `units`.
      const delayMs = units === 0 ? 0 : (units - 1) * 1000 + 1;
      expectJourney(topology, config, delayMs, 'fast');
    }
  });

  it.each<QueueType>(['classic', 'quorum'])('walks random delays with 28 levels (%p delay queues)', (queueType) => {
    const { config, topology } = topologyFor(28, '1s', queueType);
    const random = mulberry32(queueType === 'classic' ? 28 : 29);
    const max = maxDelayMs(config.delay);
    const delays = [0, 1, 999, 1000, 1001, max - 999, max];
    for (let i = 0; i < 150; i++) delays.push(Math.floor(random() * (max + 1)));
    for (const delayMs of delays) expectJourney(topology, config, delayMs, i2lane(delayMs));
  });

  it('sends an unknown destination to the unroutable queue after its delay instead of blocking a level', () => {
    const { config, topology } = topologyFor(8, '1ms');
    for (const delayMs of [0, 5, 255]) {
      const r = routeDelay(delayMs, 'nosuchlane', config.delay, n);
      const journey = walk(topology, r.exchange, r.routingKey);
      expect(journey.waitedMs).toBe(delayMs);
      expect(journey.final).toMatchObject({ name: 'ns.unroutable', role: 'unroutable' });
    }
  });
});

function i2lane(delayMs: number): string {
  return ['fast', 'slow', 'x-1'][delayMs % 3]!;
}
