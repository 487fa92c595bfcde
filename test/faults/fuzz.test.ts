/**
 * Bad input to every entry point, from a seeded PRNG (see prng.ts; a failure names the seed
 * and case): the publish JSON-lines parser and the validation behind it, the config loader
 * (files, env files, overrides), and the delivery decoder (headers, properties, bodies).
 * Each input must get a clear error of orbit's own kind (InvalidMessageError, ConfigError)
 * or a sane result — never another exception, a hang, or prototype pollution.
 *
 * The in-process part is broker-free and quick, so it runs in the main suite too; the CLI
 * part (real `orbit publish` / `seed` / `config` processes) runs in the fault suite.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message as AmqpMessage } from 'amqplib';
import { loadConfig } from '../../src/config/load';
import { ConfigError, InvalidMessageError } from '../../src/errors';
import { HEADER, readState, userHeaders, withoutBrokerHeaders } from '../../src/message/headers';
import { parsePublishLine } from '../../src/publish/json-lines';
import { Scheduler } from '../../src/publish/scheduler';
import { silentLogger } from '../../src/logging/logger';
import { decodeDelivery } from '../../src/worker/incoming';
import { AMQP_URL, deleteNamespace, randomNamespace, testConfig } from '../helpers/broker';
import { ensureBuilt, runCli } from '../helpers/cli';
import { laneConfig } from '../helpers/lane-config';
import { freePort } from '../helpers/private-broker';
import { describeFaults, faultSuite } from './audit';
import { deepJson, FUZZ_SEED, Gen, NUMBER_TEXTS, prototypeClean } from './prng';

const NOW = 1_795_000_000_000;
const TEN_MB = 10 * 1024 * 1024;

interface Failure {
  readonly target: string;
  readonly seed: number;
  readonly index: number;
  readonly input: string;
  readonly error: string;
}

/** Runs `cases` inputs through `check`; collects anything that is not an accepted outcome. */
function fuzz(target: string, seed: number, cases: number, make: (g: Gen, i: number) => unknown, check: (input: unknown) => void) {
  const g = new Gen(seed);
  const failures: Failure[] = [];
  let slowest = 0;
  const began = Date.now();
  for (let i = 0; i < cases; i++) {
    const input = make(g, i);
    // ORBIT_FUZZ_TRACE=file: the case about to run, for a hang to name itself.
    if (process.env.ORBIT_FUZZ_TRACE) writeFileSync(process.env.ORBIT_FUZZ_TRACE, `${target} seed ${seed} case ${i}\n${excerpt(input)}\n`);
    const t0 = Date.now();
    try {
      check(input);
    } catch (err) {
      failures.push({ target, seed, index: i, input: excerpt(input), error: err instanceof Error ? `${err.name}: ${err.message.slice(0, 300)}` : String(err) });
    }
    slowest = Math.max(slowest, Date.now() - t0);
    if (!prototypeClean()) {
      failures.push({ target, seed, index: i, input: excerpt(input), error: 'Object.prototype was modified' });
      break;
    }
  }
  return { target, failures, slowest, ms: Date.now() - began, cases };
}

function excerpt(input: unknown): string {
  let s: string;
  try {
    s = Buffer.isBuffer(input)
      ? `<bytes ${input.toString('hex').slice(0, 120)}>`
      : typeof input === 'string'
        ? input
        : JSON.stringify(input, (_k, v: unknown) => {
            if (typeof v === 'bigint') return `${v}n`;
            // Buffers reach a replacer already as { type: 'Buffer', data: [...] }.
            const b = v as { type?: unknown; data?: unknown };
            if (b && b.type === 'Buffer' && Array.isArray(b.data)) return `<${b.data.length} bytes>`;
            return v;
          });
  } catch {
    s = String(input);
  }
  return s.length > 240 ? `${s.slice(0, 240)}… (${s.length} chars)` : s;
}

const summaries: Array<{ target: string; cases: number; failures: number; slowestMs: number; ms: number }> = [];

afterAll(() => {
  if (!faultSuite) return;
  // One line per target in the fault suite's output and results (processed = cases run).
  const { report } = require('./audit') as typeof import('./audit');
  for (const s of summaries) {
    report({
      scenario: `fuzz: ${s.target}`,
      fault: 'random and adversarial input (seeded)',
      published: s.cases,
      expectedRuns: s.cases,
      processed: s.cases,
      lost: s.failures,
      duplicates: 0,
      duplicatedIds: 0,
      recoveryMs: null,
      durationMs: s.ms,
      notes: `seed ${FUZZ_SEED}; "lost" = inputs that crashed, hung or polluted instead of a clear error; slowest case ${s.slowestMs} ms`,
    });
  }
});

function expectClean(result: ReturnType<typeof fuzz>, boundMs: number) {
  summaries.push({ target: result.target, cases: result.cases, failures: result.failures.length, slowestMs: result.slowest, ms: result.ms });
  expect(result.failures.slice(0, 5)).toEqual([]);
  expect(result.slowest).toBeLessThan(boundMs);
}

describe('fuzz: publish JSON lines (parsePublishLine + Scheduler.prepare)', () => {
  const config = testConfig('fuzz', {
    delay: { unit: '1s', levels: 8 },
    lanes: [{ name: 'work' }, { name: 'other', maxPriority: 0, queueType: 'quorum' }],
  });
  const scheduler = new Scheduler({ config, logger: silentLogger() });
  const KEYS = ['id', 'key', 'body', 'delay', 'at', 'priority', 'lane'];

  function line(g: Gen, i: number): string {
    const r = g.next();
    if (i < 12) {
      // The adversarial classics, always included.
      return [
        '{"__proto__":{"polluted":1},"body":1}',
        '{"body":{"__proto__":{"polluted":1}},"lane":"work"}',
        '{"constructor":{"prototype":{"polluted":1}},"body":1}',
        '{"body":1,"lane":"__proto__"}',
        '{"body":1,"lane":"constructor"}',
        `{"body":${deepJson(200_000)}}`,
        `{"body":${deepJson(5_000, '{"a":', '}').replace(/\}+$/, (m) => `1${m}`)}}`,
        `{"body":"${'x'.repeat(TEN_MB)}","lane":"work"}`,
        `{"body":1,"lane":"work","delay":1e999}`,
        `{"body":1,"lane":"work","priority":1e400}`,
        `{"body":1,"lane":"work","at":-1e999}`,
        `{"body":1,"lane":"work","id":"${'i'.repeat(TEN_MB)}"}`,
      ][i]!;
    }
    if (r < 0.4) {
      const obj: Record<string, unknown> = {};
      for (const k of KEYS) if (g.bool(k === 'body' ? 0.9 : 0.35)) obj[k] = k === 'body' ? g.json(3) : k === 'lane' ? g.pick(['work', 'other', g.string()]) : g.bool(0.6) ? g.pick([g.number(), g.string()]) : g.json(1);
      if (g.bool(0.1)) Object.defineProperty(obj, g.key(KEYS), { value: g.json(1), enumerable: true });
      let text = JSON.stringify(obj);
      // Number literals JSON.stringify cannot write.
      if (g.bool(0.15)) text = text.replace(/^\{/, `{"${g.pick(['delay', 'at', 'priority'])}":${g.pick(NUMBER_TEXTS)},`);
      return text;
    }
    if (r < 0.55) return JSON.stringify(g.json(4, KEYS)) ?? 'null';
    if (r < 0.8) return g.mutate(JSON.stringify({ body: g.json(2), lane: 'work', delay: g.pick(['10s', 5000, '1h']), priority: g.int(12) }));
    // Raw bytes as a file reader would decode them (invalid UTF-8 becomes U+FFFD).
    return g.bytes(80).toString('utf8');
  }

  test('3,000 lines: each parses and validates, or fails with InvalidMessageError naming its line', () => {
    const result = fuzz('publish JSON lines', FUZZ_SEED, 3000, line, (input) => {
      const text = input as string;
      let parsed;
      try {
        parsed = parsePublishLine(text, 7);
      } catch (err) {
        if (!(err instanceof InvalidMessageError) || !err.message.startsWith('line 7: ')) throw err;
        return;
      }
      try {
        const prepared = scheduler.prepare(parsed.lane ?? 'work', parsed.body, parsed.options, NOW);
        if (!Buffer.isBuffer(prepared.body) || !Number.isFinite(prepared.dueAt) || !(prepared.delayMs >= 0) || typeof prepared.id !== 'string') {
          throw new Error(`insane message: ${excerpt({ ...prepared, body: prepared.body.length })}`);
        }
      } catch (err) {
        if (!(err instanceof InvalidMessageError)) throw err;
      }
    });
    expectClean(result, 5000);
  }, 60_000);
});

describe('fuzz: config loader (JSON file, env file, overrides)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'orbit-fuzz-config-'));
    writeFileSync(join(dir, 'h.js'), 'exports.handle = async () => {};\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const BASE = {
    namespace: 'fz',
    amqp: { url: 'amqp://guest:guest@127.0.0.1:5672', reconnect: '1s', tls: {} },
    delay: { unit: '1s', levels: 8, queueType: 'classic' },
    retry: { maxAttempts: 3, backoff: { initial: '1s', factor: 2, max: '1m', jitter: 'full' } },
    lanes: [{ name: 'work', handler: './h.js', concurrency: 4, maxPriority: 3, timeout: '10s', retry: { maxAttempts: 2 } }],
    shutdown: { timeout: '5s' },
    log: { level: 'info' },
    http: { host: '127.0.0.1', port: 0 },
  };
  const KNOWN = ['namespace', 'amqp', 'url', 'urlFile', 'heartbeat', 'reconnect', 'publishTimeout', 'tls', 'ca', 'cert', 'key', 'passphrase', 'servername',
    'rejectUnauthorized', 'delay', 'unit', 'levels', 'queueType', 'retry', 'maxAttempts', 'backoff', 'initial', 'factor', 'max', 'jitter', 'lanes', 'name',
    'concurrency', 'maxPriority', 'handler', 'timeout', 'format', 'partitions', 'workAhead', 'rateLimit', 'bundle', 'shutdown', 'log', 'level', 'http', 'host', 'port'];

  /** BASE with 1–4 random edits at random depths (objects walked by key, arrays by index). */
  function mutated(g: Gen): unknown {
    const root = JSON.parse(JSON.stringify(BASE)) as Record<string, unknown>;
    const edits = 1 + g.int(4);
    for (let e = 0; e < edits; e++) {
      let node: unknown = root;
      for (let d = 0; d < 1 + g.int(3); d++) {
        if (node === null || typeof node !== 'object') break;
        const keys = Object.keys(node);
        if (keys.length === 0 || g.bool(0.3)) break;
        const child = (node as Record<string, unknown>)[g.pick(keys)];
        if (child === null || typeof child !== 'object') break;
        node = child;
      }
      if (node === null || typeof node !== 'object') continue;
      const keys = Object.keys(node);
      const key = Array.isArray(node) ? String(g.int(node.length + 1)) : g.bool(0.7) && keys.length > 0 ? g.pick(keys) : g.key(KNOWN);
      const value = g.bool(0.1) ? undefined : g.json(2, KNOWN);
      if (value === undefined) delete (node as Record<string, unknown>)[key];
      else Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return root;
  }

  function file(g: Gen, i: number): string | Buffer {
    if (i < 10) {
      return [
        '{"__proto__":{"polluted":1},"namespace":"x"}',
        '{"lanes":[{"__proto__":{"polluted":1},"name":"x"}]}',
        '{"amqp":{"constructor":{"prototype":{"polluted":1}}}}',
        '{"delay":{"__proto__":{"unit":"1ms"}},"lanes":[{"name":"w","constructor":{"name":"x"}}]}',
        `{"namespace":"${'n'.repeat(TEN_MB)}"}`,
        `{"lanes":[{"name":"w","handler":"${'h'.repeat(TEN_MB)}"}]}`,
        `{"delay":{"levels":1e999,"unit":123456789012345678901234567890}}`,
        `{"amqp":${deepJson(100_000, '{"a":', '}').replace(/\}+$/, (m) => `1${m}`)}}`,
        `{"lanes":${deepJson(200_000)}}`,
        Buffer.concat([Buffer.from('\uFEFF{"namespace":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]), Buffer.from('"}')]).toString('latin1'),
      ][i]!;
    }
    const r = g.next();
    if (r < 0.6) return JSON.stringify(mutated(g));
    if (r < 0.7) return JSON.stringify(g.json(4, KNOWN)) ?? 'null';
    if (r < 0.85) return g.mutate(JSON.stringify(BASE));
    return Buffer.concat([Buffer.from('{"namespace":"'), g.bytes(40), Buffer.from('"}')]);
  }

  test('2,000 config files: each loads, or fails with ConfigError', () => {
    const configFile = join(dir, 'orbit.json');
    const result = fuzz('config file', FUZZ_SEED + 1, 2000, file, (input) => {
      writeFileSync(configFile, input as string | Buffer, typeof input === 'string' && input.startsWith('\uFEFF{"namespace":"') ? 'latin1' : 'utf8');
      try {
        const cfg = loadConfig({ configFile, env: {} });
        if (!Object.isFrozen(cfg) || cfg.lanes.some((l) => !/^[A-Za-z0-9_-]{1,100}$/.test(l.name))) throw new Error('insane config accepted');
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    });
    expectClean(result, 5000);
  }, 90_000);

  test.each([
    ['top level', '{"__proto__":{"polluted":1}}'],
    ['top level, a number', '{"__proto__":1}'],
    ['a group', '{"amqp":{"__proto__":{"url":"amqp://x"}}}'],
    ['constructor in a group', '{"delay":{"constructor":1}}'],
    ['constructor.prototype', '{"constructor":{"prototype":{"polluted":1}}}'],
    ['a lane', '{"lanes":[{"name":"w","__proto__":{"concurrency":5}}]}'],
    ['a lane retry', '{"lanes":[{"name":"w","retry":{"__proto__":{"maxAttempts":1}}}]}'],
    ['retry.backoff', '{"retry":{"backoff":{"__proto__":{"factor":1}}}}'],
  ])('a prototype key (%s) is refused with ConfigError, never swallowed or applied', (_name, text) => {
    const configFile = join(dir, 'proto.json');
    writeFileSync(configFile, text);
    expect(() => loadConfig({ configFile, env: {} })).toThrow(ConfigError);
    expect(prototypeClean()).toBe(true);
  });

  test('1,000 override sets (--set key=value) and env files: each loads, or fails with ConfigError', () => {
    const envFile = join(dir, 'orbit.env');
    writeFileSync(join(dir, 'base.json'), JSON.stringify(BASE));
    const LEAVES = ['namespace', 'amqp.url', 'amqp.heartbeat', 'amqp.tls.ca', 'amqp.tls.rejectUnauthorized', 'delay.unit', 'delay.levels', 'delay.queueType',
      'retry.maxAttempts', 'retry.backoff.factor', 'lanes', 'shutdown.timeout', 'log.level', 'http.port'];
    const ENV = ['ORBIT_NAMESPACE', 'ORBIT_AMQP_URL', 'ORBIT_DELAY_UNIT', 'ORBIT_DELAY_LEVELS', 'ORBIT_LANES', 'ORBIT_AMQP_HEARTBEAT', 'ORBIT_CONFIG', 'ORBIT_DELAY_QUEUE_TYPE'];
    const result = fuzz('config overrides and env files', FUZZ_SEED + 2, 1000, (g) => {
      const overrides: Record<string, string> = {};
      const n = g.int(4);
      for (let i = 0; i < n; i++) {
        const key = g.bool(0.8) ? g.pick(LEAVES) : g.pick([g.key(), `${g.pick(LEAVES)}.${g.key()}`, '__proto__.polluted', 'constructor.prototype.polluted', 'lanes.0.name']);
        overrides[key] = g.bool(0.3) ? JSON.stringify(g.json(3, KNOWN)) : g.string(30);
      }
      const env = Array.from({ length: g.int(5) }, () => `${g.bool(0.8) ? g.pick(ENV) : g.string(10)}=${g.bool(0.3) ? JSON.stringify(g.json(2)) : g.string(20)}`).join('\n');
      return { overrides, env: g.bool(0.2) ? g.mutate(env) : env };
    }, (input) => {
      const { overrides, env } = input as { overrides: Record<string, string>; env: string };
      writeFileSync(envFile, env);
      try {
        loadConfig({ configFile: join(dir, 'base.json'), envFile, overrides, env: {}, cwd: dir });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    });
    expectClean(result, 5000);
  }, 60_000);
});

describe('fuzz: delivery decoding (readState, userHeaders, decodeDelivery)', () => {
  const lanes = [laneConfig({ name: 'raw', format: 'raw', maxPriority: 9 }), laneConfig({ name: 'json', format: 'json', maxPriority: 0 })];
  const STATE_KEYS = [HEADER.due, HEADER.runs, HEADER.attempt, HEADER.lane, HEADER.key, 'x-death', 'x-first-death-queue', 'x-orbit-other', 'trace-id'];

  /** A header value of any type amqplib can decode (and some it cannot). */
  function headerValue(g: Gen): unknown {
    switch (g.int(9)) {
      case 0:
        return g.number();
      case 1:
        return g.string();
      case 2:
        return g.bytes(24);
      case 3:
        return BigInt(g.int(1_000_000)) * BigInt(10) ** BigInt(g.int(25)) * (g.bool() ? 1n : -1n);
      case 4:
        return g.pick([null, undefined, true, false, NaN, Infinity, -Infinity]);
      case 5:
        return new Date(g.pick([0, -1, NOW, 8.64e15, NaN]));
      case 6:
        return { '!': 'decimal', value: { places: g.int(5), digits: g.int(1e6) } };
      case 7:
        return Buffer.from(g.pick(['12', ' 7 ', '1e3', '-1', '99999999999999999', '', '0042', '\u0000']));
      default:
        return g.json(2, STATE_KEYS);
    }
  }

  function headers(g: Gen): Record<string, unknown> | undefined {
    if (g.bool(0.05)) return undefined;
    const out: Record<string, unknown> = {};
    const n = g.int(8);
    for (let i = 0; i < n; i++) {
      const key = g.bool(0.7) ? g.pick(STATE_KEYS) : g.key();
      Object.defineProperty(out, key, { value: headerValue(g), enumerable: true, writable: true, configurable: true });
    }
    // What amqplib makes of a header named __proto__: the decoded object's prototype.
    if (g.bool(0.05)) Object.setPrototypeOf(out, { [HEADER.runs]: 99, [HEADER.key]: 'injected', polluted: 1 });
    return out;
  }

  function delivery(g: Gen, i: number): AmqpMessage {
    const big = i % 1000 === 999;
    const content = big ? (g.bool() ? Buffer.alloc(TEN_MB, 0x7b) : Buffer.from(JSON.stringify({ pad: 'x'.repeat(TEN_MB) }))) : g.bool(0.5) ? g.bytes(64) : Buffer.from(JSON.stringify(g.json(3)) ?? 'null');
    // Properties as amqplib delivers them (octet priority, shortstr id) — and, in a fifth of
    // the cases, any value at all.
    const garbage = g.bool(0.2);
    return {
      content,
      fields: { deliveryTag: i + 1, redelivered: g.bool(), exchange: '', routingKey: 'x', consumerTag: 'c', messageCount: 0 } as AmqpMessage['fields'],
      properties: {
        headers: headers(g),
        messageId: garbage ? headerValue(g) : g.bool(0.9) ? g.string(40) : undefined,
        priority: garbage ? headerValue(g) : g.bool(0.5) ? g.int(256) : undefined,
        contentType: garbage ? headerValue(g) : g.bool() ? 'application/json' : undefined,
      } as AmqpMessage['properties'],
    };
  }

  test('3,000 deliveries: a sane message every time (state from own headers only, ids, dates, priorities in range)', () => {
    const result = fuzz('delivery decoding', FUZZ_SEED + 3, 3000, delivery, (input) => {
      const raw = input as AmqpMessage;
      for (const lane of lanes) {
        const decoded = decodeDelivery(raw, lane, NOW, false);
        if (decoded.length !== 1) throw new Error(`${decoded.length} messages from one delivery`);
        const { message, decision, stored } = decoded[0]!;
        const ok =
          typeof message.id === 'string' && message.id !== '' &&
          Number.isSafeInteger(message.runs) && message.runs >= 0 &&
          Number.isSafeInteger(message.attempt) && message.attempt >= 0 &&
          Number.isFinite(message.dueAt.getTime()) &&
          message.body === raw.content &&
          decision.runs === message.runs;
        if (!ok) throw new Error(`insane message ${excerpt({ id: message.id, runs: message.runs, attempt: message.attempt, due: String(message.dueAt) })}`);
        const wirePriority = typeof raw.properties.priority === 'number' && Number.isInteger(raw.properties.priority) && raw.properties.priority >= 0;
        if (wirePriority && !(message.priority >= 0 && message.priority <= lane.maxPriority)) throw new Error(`priority ${message.priority} outside 0…${lane.maxPriority}`);
        // The prototype of a headers object never supplies orbit's state.
        const h = raw.properties.headers;
        if (h && !Object.prototype.hasOwnProperty.call(h, HEADER.runs) && message.runs !== 0) throw new Error(`runs ${message.runs} read from a prototype`);
        for (const copy of [decision.userHeaders, stored.headers, userHeaders(h), withoutBrokerHeaders(h)]) {
          if (Object.getPrototypeOf(copy) !== Object.prototype) throw new Error('a header copy has a foreign prototype');
        }
        if (Object.keys(decision.userHeaders).some((k) => k.startsWith('x-orbit-') || k.startsWith('x-death') || k.startsWith('x-first-death'))) throw new Error('orbit or broker headers kept as user headers');
        if (lane.format === 'json') {
          let valid = true;
          try {
            JSON.parse(raw.content.toString('utf8'));
          } catch {
            valid = false;
          }
          if (valid === (decoded[0]!.badBody !== undefined)) throw new Error('json lane: badBody does not match the body');
        }
      }
      const state = readState(raw.properties.headers, NOW);
      if (!Number.isSafeInteger(state.dueAt) || !Number.isSafeInteger(state.runs) || !Number.isSafeInteger(state.attempt)) throw new Error('readState returned a non-integer');
    });
    expectClean(result, 5000);
  }, 90_000);
});

describeFaults('fuzz: the CLI entry points (real processes)', () => {
  let dir: string;
  let configFile: string;

  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'orbit-fuzz-cli-'));
    mkdirSync(join(dir, 'in'));
    // A broker port nobody listens on: nothing here may get as far as connecting.
    configFile = join(dir, 'orbit.json');
    writeFileSync(configFile, JSON.stringify({ namespace: 'fuzzcli', amqp: { url: `amqp://guest:guest@127.0.0.1:${await freePort()}` }, lanes: [{ name: 'work' }], log: { level: 'silent' } }));
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const BAD_LINES: Array<[string, string | Buffer, RegExp]> = [
    ['invalid UTF-8', Buffer.concat([Buffer.from('{"body":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('","lane":"nope"}\n')]), /line 1: unknown lane/],
    ['__proto__ key', '{"__proto__":{"polluted":1},"body":1}\n', /line 1: unknown key "__proto__"/],
    ['deep nesting', `{"body":${deepJson(300_000)},"lane":"work"}\n`, /line 1: body cannot be encoded as JSON/],
    ['10 MB line with a typo', `{"body":"${'x'.repeat(TEN_MB)}","dealy":"1s"}\n`, /line 1: unknown key "dealy"/],
    ['huge delay', '{"body":1,"lane":"work","delay":1e999}\n', /line 1: .*delay/i],
    ['priority beyond the lane', '{"body":1,"lane":"work","priority":123456789012345678901234567890}\n', /line 1: .*priority/i],
    ['not an object, on line 3', '\n\n[1,2,3]\n', /line 3: expected a JSON object/],
  ];

  test.each(BAD_LINES)('orbit publish --file (%s): exit 2, one clear line on stderr, no stack trace', async (name, content, message) => {
    const file = join(dir, 'in', `${name.replace(/\W+/g, '-')}.jsonl`);
    writeFileSync(file, content);
    const res = await runCli(['publish', '--config', configFile, '--file', file], { timeoutMs: 30_000 });
    expect({ code: res.code, stderr: res.stderr }).toMatchObject({ code: 2, stderr: expect.stringMatching(message) });
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(res.stderr).toMatch(/published 0 message\(s\)/);
  }, 60_000);

  test('orbit seed with a malformed line between good ones: --strict stops there (exit 2, resume point), without it the line is skipped and reported', async () => {
    const ns = randomNamespace('fzseed');
    const seedConfig = join(dir, 'seed.json');
    writeFileSync(seedConfig, JSON.stringify({ namespace: ns, amqp: { url: AMQP_URL }, lanes: [{ name: 'work' }], log: { level: 'silent' } }));
    const file = join(dir, 'in', 'seed.jsonl');
    writeFileSync(file, '{"body":1,"id":"s1"}\n{"__proto__":{"polluted":1},"body":2}\n{"body":3,"id":"s3"}\n');
    try {
      const strict = await runCli(['seed', '--config', seedConfig, '--lane', 'work', '--file', file, '--strict', '--no-progress'], { timeoutMs: 30_000 });
      expect(strict.code).toBe(2);
      expect(strict.stderr).toMatch(/line 2: unknown key "__proto__"/);
      expect(strict.stderr).toMatch(/resume with --skip 1\b/);
      expect(strict.stderr).not.toMatch(/\n\s+at /);
      const lenient = await runCli(['seed', '--config', seedConfig, '--lane', 'work', '--file', file, '--no-progress'], { timeoutMs: 30_000 });
      expect(lenient.code).toBe(0);
      expect(lenient.stderr).toMatch(/line 2: unknown key "__proto__".*skipped/);
      expect(JSON.parse(lenient.stdout.trim())).toMatchObject({ confirmed: 2, malformed: 1, linesRead: 3, doneThrough: 3 });
    } finally {
      await deleteNamespace(ns);
    }
  }, 60_000);

  test.each([
    ['__proto__ at the top', '{"__proto__":{"polluted":1}}'],
    ['constructor.prototype in a lane', '{"lanes":[{"name":"w","constructor":{"prototype":{"polluted":1}}}]}'],
    ['10 MB namespace', `{"namespace":"${'n'.repeat(TEN_MB)}"}`],
    ['huge numbers', '{"delay":{"levels":1e999,"unit":123456789012345678901234567890}}'],
    ['deep nesting', `{"amqp":${deepJson(300_000, '{"a":', '}').replace(/\}+$/, (m) => `1${m}`)}}`],
  ])('orbit config (%s): exit 2 with a ConfigError line, no stack trace', async (_name, text) => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, text);
    const res = await runCli(['config', '--config', file], { timeoutMs: 30_000 });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^orbit: .*\[CONFIG_INVALID\]\n$/s);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(res.stderr.length).toBeLessThan(10_000); // a 10 MB value is not echoed back
  }, 60_000);
});
