/**
 * decodeDelivery without a broker: a bundle fans out into logical messages that look to the
 * handler (and to a dead letter) exactly as plain messages with the same state would.
 */
import type { Message as AmqpMessage } from 'amqplib';
import { BUNDLE_HEADER, BUNDLE_VERSION, encodeBundle } from '../../src/message/bundle';
import { HEADER } from '../../src/message/headers';
import { decodeDelivery } from '../../src/worker/incoming';
import { runKey } from '../../src/worker/recent-runs';
import { testConfig } from '../helpers/broker';

const lane = testConfig('ns', { lanes: [{ name: 'b', bundle: { max: 10 } }] }).lanes[0]!;

function delivery(content: Buffer, headers: Record<string, unknown>, messageId?: string): AmqpMessage {
  return {
    content,
    fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: '', consumerTag: 'c' },
    properties: { headers, priority: 3, messageId, contentType: undefined },
  } as unknown as AmqpMessage;
}

describe('decodeDelivery', () => {
  test('a bundle yields one message per entry, each with the headers a plain message carries and no user headers', () => {
    const body = encodeBundle([
      { id: 'a', runs: 2, attempt: 0, dueAt: 1_000, body: Buffer.from('{"n":1}') },
      { id: 'b', key: 'k', runs: 0, attempt: 1, dueAt: 2_000, body: Buffer.from('{"n":2}') },
    ]);
    const out = decodeDelivery(delivery(body, { [BUNDLE_HEADER]: BUNDLE_VERSION, [HEADER.lane]: 'b' }, 'bundle-id'), lane, 5_000);
    expect(out.map((m) => [m.message.id, m.message.runs, m.message.attempt, m.message.dueAt.getTime(), m.message.priority])).toEqual([
      ['a', 2, 0, 1_000, 3],
      ['b', 0, 1, 2_000, 3],
    ]);
    expect(out[0]!.message.headers).toEqual({ [HEADER.due]: 1_000, [HEADER.runs]: 2, [HEADER.attempt]: 0, [HEADER.lane]: 'b' });
    expect(out[1]!.message.headers).toMatchObject({ [HEADER.key]: 'k', [HEADER.attempt]: 1 });
    expect(out[0]!.message.headers).toBe(out[0]!.message.headers); // made once
    for (const m of out) expect(m.decision.userHeaders).toEqual({});
    expect(out[1]!.decision.key).toBe('k');
    // A dead letter of an entry is stored unbundled, with its own state headers.
    expect(out[1]!.stored).toMatchObject({ id: 'b', body: Buffer.from('{"n":2}'), headers: { [HEADER.runs]: 0, [HEADER.key]: 'k' } });
    expect(out[0]!.message.json()).toEqual({ n: 1 });
  });

  test("a plain message keeps the user's headers for the handler, the decision and a dead letter", () => {
    const headers = { [HEADER.runs]: 4, [HEADER.due]: 9_000, trace: 'abc' };
    const [m] = decodeDelivery(delivery(Buffer.from('x'), headers, 'p1'), lane, 10_000);
    expect(m!.message.headers).toBe(headers);
    expect(m!.message.runs).toBe(4);
    expect(m!.decision.userHeaders).toEqual({ trace: 'abc' });
    expect(m!.stored.headers).toMatchObject({ trace: 'abc', [HEADER.runs]: 4 });
  });

  test('what a handler sees of a message: its fields, and JSON as a plain object would give', () => {
    const headers = { [HEADER.runs]: 1, [HEADER.due]: 9_000, trace: 'abc' };
    const [m] = decodeDelivery(delivery(Buffer.from('{"a":1}'), headers, 'p2'), lane, 10_000);
    const msg = m!.message;
    const { id, runs, dueAt, headers: h } = msg;
    expect([id, runs, dueAt.getTime(), h]).toEqual(['p2', 1, 9_000, headers]);
    expect(JSON.parse(JSON.stringify(msg))).toEqual({
      id: 'p2',
      lane: 'b',
      body: { type: 'Buffer', data: [...Buffer.from('{"a":1}')] },
      priority: 3,
      runs: 1,
      attempt: 0,
      dueAt: new Date(9_000).toISOString(),
      early: false,
      redelivered: false,
      headers,
    });
  });
});


describe('runKey on a decoded message', () => {
  test("is the run's RecentRuns name, for a plain message and a bundle's entry alike, made once", () => {
    const headers = { [HEADER.runs]: 4, [HEADER.due]: 9_000, [HEADER.generation]: 1_700_000_000_000.5 };
    const [plain] = decodeDelivery(delivery(Buffer.from('{}'), headers, 'p1'), lane, 10_000);
    expect(plain!.runKey).toBe(runKey('b', plain!));
    expect(plain!.runKey).toContain('p1');
    const body = encodeBundle([{ id: 'e1', runs: 2, attempt: 1, dueAt: 1_000, generation: 1_700_000_000_000.25, body: Buffer.from('{}') }]);
    const [entry] = decodeDelivery(delivery(body, { [BUNDLE_HEADER]: BUNDLE_VERSION, [HEADER.lane]: 'b' }, 'bundle-id'), lane, 5_000);
    expect(entry!.runKey).toBe(runKey('b', entry!));
    expect(entry!.runKey).toBe(entry!.runKey);
    // No generation (a message from before generations): no name, never taken for a copy.
    const [old] = decodeDelivery(delivery(Buffer.from('{}'), { [HEADER.runs]: 4, [HEADER.due]: 9_000 }, 'p2'), lane, 10_000);
    expect(old!.runKey).toBeUndefined();
  });
});
