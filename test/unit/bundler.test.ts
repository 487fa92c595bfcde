import { PublishError } from '../../src/errors';
import { BUNDLE_VERSION, decodeBundle } from '../../src/message/bundle';
import type { OutgoingMessage } from '../../src/message/types';
import { Bundler } from '../../src/publish/bundler';

/** A long linger: only the test decides when bundles go. */
const cfg = { max: 100, lingerMs: 3_600_000, maxBytes: 262_144 };
/** For bundlers whose every bundle has company: a bundle of one would be a failure of the test. */
const neverAlone = (): Promise<void> => Promise.reject(new Error('a bundle of one'));
const msg = (id: string, lane = 'b'): OutgoingMessage => ({ id, lane, body: Buffer.from('{}'), priority: 0, dueAt: 1, delayMs: 0, runs: 0, attempt: 0, generation: 1, headers: {} });

describe('Bundler', () => {
  test('flushOldest sends the oldest open bundles first, down to `keep` lingering messages', async () => {
    const sent: string[] = [];
    const bundler = new Bundler(async ({ routingKey }, body) => {
      sent.push(`${routingKey}:${decodeBundle(body, BUNDLE_VERSION).length}`);
    }, neverAlone);
    const settled: number[] = [];
    for (let i = 0; i < 30; i++) bundler.addWith(msg(`m${i}`), { exchange: 'x', routingKey: `k${Math.floor(i / 10)}` }, cfg, (t, ok) => ok && settled.push(t), i);
    expect(bundler.lingering).toBe(30);
    bundler.flushOldest(15);
    expect(sent).toEqual(['k0:10', 'k1:10']);
    expect(bundler.lingering).toBe(10);
    bundler.flushAll();
    expect(sent).toEqual(['k0:10', 'k1:10', 'k2:10']);
    await new Promise((r) => setImmediate(r));
    expect(settled.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  test('on the ladder, messages to one rung but different destinations (CC keys) never share a bundle', async () => {
    const sent: string[] = [];
    const bundler = new Bundler(async ({ routingKey, cc }, body) => {
      sent.push(`${routingKey}>${(cc ?? []).join(',')}:${decodeBundle(body, BUNDLE_VERSION).length}`);
    }, neverAlone);
    for (let i = 0; i < 6; i++) {
      const lane = i % 2 ? 'a' : 'b';
      bundler.addWith(msg(`m${i}`, lane), { exchange: '', routingKey: 'ns.wait:1m', cc: [`ns.to.${lane}`] }, cfg, () => undefined, i);
    }
    bundler.flushAll();
    expect(sent.sort()).toEqual(['ns.wait:1m>ns.to.a:3', 'ns.wait:1m>ns.to.b:3']);
  });

  test('a failed bundle fails each of its messages with its error', async () => {
    const bundler = new Bundler(() => Promise.reject(new PublishError('nacked', { code: 'NACKED' })), neverAlone);
    const three = { ...cfg, max: 3 };
    const route = { exchange: 'x', routingKey: 'k' };
    const failed: number[] = [];
    const first = new Promise<void>((resolve, reject) => bundler.addWith(msg('a'), route, three, (_t, ok, err) => (ok ? resolve() : reject(err)), 0));
    bundler.addWith(msg('b'), route, three, (t, ok, err) => !ok && err instanceof PublishError && failed.push(t), 7);
    bundler.addWith(msg('c'), route, three, (t, ok, err) => !ok && err instanceof PublishError && failed.push(t), 8);
    await expect(first).rejects.toThrow('nacked');
    expect(failed).toEqual([7, 8]);
  });

  test('a bundle of one goes as the plain message, with its own id; a bundle of two as a bundle', async () => {
    const sent: string[] = [];
    const bundler = new Bundler(
      async ({ routingKey }, body, { messageId }) => {
        sent.push(`${routingKey} bundle ${decodeBundle(body, BUNDLE_VERSION).map((m) => m.id).join(',')} as ${messageId === 'a' ? 'a' : 'new id'}`);
      },
      async ({ routingKey }, m) => {
        sent.push(`${routingKey} alone ${m.id}`);
      },
    );
    const settled: number[] = [];
    bundler.addWith(msg('a'), { exchange: 'x', routingKey: 'one' }, cfg, (t, ok) => ok && settled.push(t), 1);
    bundler.addWith(msg('b'), { exchange: 'x', routingKey: 'two' }, cfg, (t, ok) => ok && settled.push(t), 2);
    bundler.addWith(msg('c'), { exchange: 'x', routingKey: 'two' }, cfg, (t, ok) => ok && settled.push(t), 3);
    bundler.flushAll();
    expect(sent).toEqual(['one alone a', 'two bundle b,c as new id']);
    await new Promise((r) => setImmediate(r));
    expect(settled.sort()).toEqual([1, 2, 3]);
  });

  test('a message that would push a bundle past maxBytes goes in the next one', async () => {
    const sizes: number[] = [];
    const bundler = new Bundler(
      async (_route, body) => {
        sizes.push(decodeBundle(body, BUNDLE_VERSION).length);
      },
      async () => {
        sizes.push(1);
      },
    );
    const route = { exchange: 'x', routingKey: 'k' };
    // Each entry is a few dozen bytes: 1024 bytes hold some, not all 100.
    for (let i = 0; i < 100; i++) bundler.addWith(msg(`m${i}`), route, { ...cfg, maxBytes: 1024 }, () => undefined, i);
    bundler.flushAll();
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(100);
  });

  test('each message added with a kind is observed once its bundle is confirmed, with the seconds since it was added; a failed bundle is not', async () => {
    const observed: Array<[string, number]> = [];
    let fail = false;
    const bundler = new Bundler<{ exchange: string; routingKey: string }, string>(
      () => (fail ? Promise.reject(new Error('nacked')) : Promise.resolve()),
      neverAlone,
      undefined,
      (kind, seconds) => void observed.push([kind, seconds]),
    );
    const route = { exchange: 'x', routingKey: 'k' };
    const settled: number[] = [];
    const settle = (t: number) => void settled.push(t);
    bundler.addWith(msg('a'), route, cfg, settle, 1, cfg.lingerMs, 'reschedule');
    await new Promise((r) => setTimeout(r, 20));
    bundler.addWith(msg('b'), route, cfg, settle, 2, cfg.lingerMs, 'retry');
    bundler.addWith(msg('c'), route, cfg, settle, 3); // no kind: not observed
    bundler.flushAll();
    await bundler.settled();
    expect(settled).toEqual([1, 2, 3]);
    expect(observed.map(([kind]) => kind)).toEqual(['reschedule', 'retry']);
    expect(observed[0]![1]).toBeGreaterThanOrEqual(0.015);
    expect(observed[1]![1]).toBeGreaterThanOrEqual(0);
    expect(observed[1]![1]).toBeLessThan(observed[0]![1]);
    fail = true;
    bundler.addWith(msg('d'), route, cfg, settle, 4, cfg.lingerMs, 'reschedule');
    bundler.addWith(msg('e'), route, cfg, settle, 5, cfg.lingerMs, 'reschedule');
    bundler.flushAll();
    await bundler.settled();
    expect(observed).toHaveLength(2);
  });
});
