import { defaultSeedWindow } from '../../src/seed/default-window';
import type { ConfirmedPublisher } from '../../src/amqp/confirmed-publisher';
import type { ResolvedConfig } from '../../src/config/types';
import { BUNDLE_HEADER, BUNDLE_VERSION, decodeBundle } from '../../src/message/bundle';
import { MessagePublisher } from '../../src/publish/message-publisher';
import { Scheduler } from '../../src/publish/scheduler';
import { InvalidMessageError } from '../../src/errors';
import { lineError } from '../../src/publish/json-lines';
import { PendingLines, seed, type SeedItem, type SeedTarget } from '../../src/seed/seeder';
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { generated, jsonLineBatches, jsonLines } from '../../src/seed/sources';
import { names } from '../../src/naming/names';
import { testConfig } from '../helpers/broker';

/** One AMQP publish the fake broker saw; `confirm`/`fail` settle it. */
interface Sent {
  readonly exchange: string;
  readonly routingKey: string;
  readonly body: Buffer;
  readonly headers: Record<string, unknown>;
  confirm(): void;
  fail(err: unknown): void;
}

/** A ConfirmedPublisher stand-in: confirms at once, or holds publishes for the test to settle. */
function fakeBroker(mode: 'confirm' | 'hold') {
  const sent: Sent[] = [];
  const publisher = {
    publish(exchange: string, routingKey: string, body: Buffer, options: { headers?: Record<string, unknown> }): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        sent.push({ exchange, routingKey, body, headers: options.headers ?? {}, confirm: resolve, fail: reject });
        if (mode === 'confirm') setImmediate(resolve);
      });
    },
  } as unknown as ConfirmedPublisher;
  /** Logical messages the broker holds (bundles unpacked). */
  const logical = () => sent.reduce((n, s) => n + (s.headers[BUNDLE_HEADER] === undefined ? 1 : decodeBundle(s.body, BUNDLE_VERSION).length), 0);
  return { sent, publisher, logical };
}

/** What `orbit seed` wires: Scheduler.prepare for validation, a MessagePublisher over the fake broker. */
function target(config: ResolvedConfig, publisher: ConfirmedPublisher): SeedTarget & { publisher: MessagePublisher } {
  const scheduler = new Scheduler({ config });
  const mp = new MessagePublisher(publisher, names(config.namespace), config.delay, config.lanes, { ensure: () => undefined, forget: () => undefined });
  return {
    publisher: mp,
    prepare: (lane, body, options) => scheduler.prepare(lane, body, options),
    send: (m) => mp.schedule(m),
    sendWith: (m, settle, token) => mp.scheduleWith(m, settle, token),
    flush: (keep) => mp.flush(keep),
  };
}

function bundledConfig(max: number, linger = '1h'): ResolvedConfig {
  return testConfig('unit-seed', { delay: { unit: '1s', levels: 20 }, lanes: [{ name: 'b', bundle: { max, linger } }] });
}

function items(count: number, make: (line: number) => Partial<SeedItem['parsed'] & object> = () => ({})): SeedItem[] {
  return Array.from({ length: count }, (_, i) => ({
    line: i + 1,
    bytes: 10,
    parsed: { lane: undefined, body: { i: i + 1 }, options: { id: `m-${i + 1}` }, ...make(i + 1) },
  }));
}

describe('PendingLines', () => {
  test('lowest() is always the lowest unsettled line, through growth and random settling', () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const lines = new PendingLines();
    const model = new Set<number>();
    let next = 1;
    const wrong: number[] = [];
    let grewPast = 0;
    for (let step = 0; step < 50_000; step++) {
      if (rnd() < 0.55 || model.size === 0) {
        next += rnd() < 0.1 ? 3 : 1; // gaps: malformed or blank lines never sent
        lines.add(next);
        model.add(next);
      } else {
        // Settle mostly the oldest, sometimes a random one: bundles confirm out of order.
        let pick = model.values().next().value!;
        if (rnd() < 0.3) {
          let skip = Math.floor(rnd() * Math.min(model.size, 200));
          for (const l of model) {
            if (skip-- > 0) continue;
            pick = l;
            break;
          }
        }
        lines.delete(pick);
        model.delete(pick);
      }
      // Lines go into the set in increasing order, so its first is its lowest.
      if (lines.lowest() !== (model.size === 0 ? Infinity : model.values().next().value)) wrong.push(step);
      if (lines.size !== model.size) wrong.push(-step);
      grewPast = Math.max(grewPast, model.size);
    }
    expect(wrong).toEqual([]);
    expect(grewPast).toBeGreaterThan(1024); // the ring had to grow
  });
});

describe('generated()', () => {
  test('bodies are the JSON of { n, pad }, ids gen-<n>, --spread delays in descending order, --skip numbers lines as before', () => {
    const all = [...generated(500, 80, 0, 3_600_000)];
    expect(all).toHaveLength(500);
    for (const item of all) {
      const parsed = item.parsed as Exclude<SeedItem['parsed'], Error>;
      const body = parsed.body as Buffer;
      const json = JSON.parse(body.toString()) as { n: number; pad: string };
      expect(json.n).toBe(item.line);
      expect(body.toString()).toBe(JSON.stringify({ n: item.line, pad: json.pad }));
      // About `bytes` (as before: the size of { n: 0, pad: '' } counts one digit of n).
      expect(Math.abs(body.length - 80)).toBeLessThanOrEqual(1);
      expect(parsed.options.id).toBe(`gen-${item.line}`);
    }
    const delays = all.map((i) => Number((i.parsed as Exclude<SeedItem['parsed'], Error>).options.delay));
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeLessThanOrEqual(delays[i - 1]!);
    expect(delays[0]).toBeLessThan(3_600_000);
    expect(delays.at(-1)).toBeGreaterThanOrEqual(0);
    const resumed = [...generated(500, 80, 480)];
    expect(resumed.map((i) => i.line)).toEqual(Array.from({ length: 20 }, (_, i) => 481 + i));
  });
});

describe('jsonLines / jsonLineBatches', () => {
  /** What readline (the reader before batches) numbered and kept, for the same bytes. */
  async function viaReadline(chunks: Buffer[]): Promise<string[]> {
    const out: string[] = [];
    let n = 0;
    for await (const text of createInterface({ input: Readable.from(chunks), crlfDelay: Infinity })) {
      n++;
      if (text.trim() !== '') out.push(`${n}:${JSON.stringify((JSON.parse(text) as { body: unknown }).body)}`);
    }
    return out;
  }
  const text = (item: SeedItem) => `${item.line}:${JSON.stringify((item.parsed as Exclude<SeedItem['parsed'], Error>).body)}`;

  test('numbers lines as readline did, whatever the chunk boundaries: \\n, \\r\\n, lone \\r, blank lines, split UTF-8, no final newline', async () => {
    const input = Buffer.from(['{"body":"é1"}', '', '{"body":2}\r', '{"body":"ü3"}\r{"body":4}', '  ', '{"body":"€5"}'].join('\n'));
    const expected = await viaReadline([input]);
    expect(expected).toHaveLength(5);
    for (let size = 1; size <= input.length; size += size < 8 ? 1 : 7) {
      const chunks: Buffer[] = [];
      for (let o = 0; o < input.length; o += size) chunks.push(input.subarray(o, o + size));
      const items: SeedItem[] = [];
      for await (const batch of jsonLineBatches(Readable.from(chunks))) items.push(...batch);
      expect(items.map(text)).toEqual(expected);
    }
  });

  test('--skip counts the skipped lines; malformed lines carry their number; jsonLines yields the same items one by one', async () => {
    const input = ['{"body":1}', '{"body":2}', 'nope', '{"body":4}'].join('\n') + '\n';
    const items: SeedItem[] = [];
    for await (const item of jsonLines(Readable.from([Buffer.from(input)]), 1)) items.push(item);
    expect(items.map((i) => i.line)).toEqual([2, 3, 4]);
    expect(String(items[1]!.parsed)).toMatch(/line 3: not valid JSON/);
    expect(items[0]!.bytes).toBe(11);
  });
});

describe('seed() naming malformed lines', () => {
  test('each error names its line once: parse errors and missing lanes as made, the publisher\'s own checks with the line added', async () => {
    const t = target(bundledConfig(1), fakeBroker('confirm').publisher);
    const input: SeedItem[] = [
      { line: 1, bytes: 10, parsed: lineError(1, 'expected a JSON object') },
      { line: 2, bytes: 10, parsed: { lane: undefined, body: 1, options: {} } },
      { line: 3, bytes: 10, parsed: { lane: 'nope', body: 1, options: {} } },
    ];
    const errors: InvalidMessageError[] = [];
    await seed(input, t, {}, (_line, err) => errors.push(err));
    expect(errors.map((e) => [e.line, e.message.replace(/ \(lanes:.*$/, '')])).toEqual([
      [1, 'line 1: expected a JSON object'],
      [2, 'line 2: no lane (give "lane" or --lane)'],
      [3, 'line 3: unknown lane "nope"'],
    ]);
  });
});

describe('seed() on a bundled lane', () => {
  test('a long linger never stalls it: a full window and the end of input send open bundles at once', async () => {
    const broker = fakeBroker('confirm');
    const t = target(bundledConfig(100), broker.publisher);
    const started = Date.now();
    // 10 due times of 1,000 messages each, in due-time order; window 2,000 (linger: an hour).
    const input = items(10_000, (line) => ({ options: { id: `m-${line}`, delay: (10 - Math.ceil(line / 1000)) * 1000 } }));
    const result = await seed(input, t, { lane: 'b', window: 2000 }, () => undefined);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result).toMatchObject({ confirmed: 10_000, read: 10_000, malformed: 0, doneThrough: 10_000 });
    expect(result.failure).toBeUndefined();
    expect(broker.logical()).toBe(10_000);
    // Full bundles: 100 AMQP messages for 10,000 logical ones.
    expect(broker.sent).toHaveLength(100);
    expect(t.publisher.lingering).toBe(0);
  });

  test('input in random due-time order still completes with the window bounding what waits', async () => {
    const broker = fakeBroker('confirm');
    const t = target(bundledConfig(1000), broker.publisher);
    let lingeringMax = 0;
    const input = (function* () {
      for (const item of items(20_000, (line) => ({ options: { id: `m-${line}`, delay: ((line * 7919) % 50) * 1000 } }))) {
        lingeringMax = Math.max(lingeringMax, t.publisher.lingering);
        yield item;
      }
    })();
    const result = await seed(input, t, { lane: 'b', window: 4000 }, () => undefined);
    expect(result).toMatchObject({ confirmed: 20_000, doneThrough: 20_000 });
    expect(broker.logical()).toBe(20_000);
    expect(lingeringMax).toBeLessThanOrEqual(4000);
  });

  test('doneThrough stays exact in lines when bundles confirm out of order and one fails', async () => {
    const broker = fakeBroker('hold');
    const t = target(bundledConfig(10), broker.publisher);
    // Two interleaved due times: odd lines in one bundle stream, even lines in the other; line 15 is malformed.
    const input = items(40, (line) => ({ options: { id: line === 15 ? '' : `m-${line}`, delay: (line % 2) * 1000 } }));
    const malformed: number[] = [];
    const run = seed(input, t, { lane: 'b', window: 1000 }, (line) => malformed.push(line));
    while (broker.sent.length < 4) await new Promise((r) => setImmediate(r));
    // Bundles: odd 1..19 (minus 15) + 21, even 2..20, odd 23..39, even 22..40 — their order depends on the fill.
    const lines = (s: Sent) => decodeBundle(s.body, BUNDLE_VERSION).map((e) => Number(e.id.slice(2)));
    const withLine = (n: number) => broker.sent.find((s) => lines(s).includes(n))!;
    withLine(2).confirm(); // even lines 2..20
    withLine(22).fail(new Error('nacked')); // even lines 22..40
    withLine(1).confirm();
    withLine(23).confirm();
    const result = await run;
    expect(malformed).toEqual([15]);
    expect(result.confirmed).toBe(39 - 10);
    // Everything before line 22 is confirmed or malformed; 22 failed: resume with --skip 21.
    expect(result.doneThrough).toBe(21);
    expect(String(result.failure)).toMatch(/line (22|24|26|28|30|32|34|36|38|40): nacked/);
  });
});

describe('orbit seed default window', () => {
  test('unbundled 2,000; bundled 50 bundles; bundled on the ladder the most (100,000)', () => {
    expect(defaultSeedWindow(1, 0)).toBe(2000);
    expect(defaultSeedWindow(1, 0.02)).toBe(2000);
    expect(defaultSeedWindow(100, 0)).toBe(5000);
    expect(defaultSeedWindow(10_000, 0)).toBe(100_000);
    expect(defaultSeedWindow(100, 0.02)).toBe(100_000);
  });
});
