/**
 * The HTTP handler contract without a network: `outcomeFor` (response → outcome or error)
 * and `requestFor` (message → the JSON document orbit POSTs). The same errors then go
 * through `decideOutcome`, to show which end dead at once and which are retried.
 */
import { UnrecoverableError } from '../../src/errors';
import { decideOutcome, type DecisionContext, type DecisionInput } from '../../src/worker/decide-outcome';
import type { Message } from '../../src/worker/handler-types';
import { HttpHandlerError, outcomeFor, requestFor } from '../../src/worker/http-handler';
import { laneConfig } from '../helpers/lane-config';

const SHOWN = 'http://127.0.0.1:9/handle';

const text = (s: string): Buffer => Buffer.from(s, 'utf8');
const json = (v: unknown): Buffer => text(JSON.stringify(v));

/** The error `outcomeFor` throws (fails the test when it returns instead). */
function thrown(status: number, body: Buffer): Error & { code?: string } {
  try {
    outcomeFor(status, body, SHOWN);
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error(`outcomeFor(${status}, ${body.toString()}) did not throw`);
}

function expectBadResponse(status: number, body: Buffer, message?: RegExp): void {
  const err = thrown(status, body);
  expect(err).toBeInstanceOf(HttpHandlerError);
  expect(err).not.toBeInstanceOf(UnrecoverableError);
  expect(err.code).toBe('HTTP_BAD_RESPONSE');
  if (message) expect(err.message).toMatch(message);
}

describe('outcomeFor: status classes', () => {
  test.each([408, 425, 429])('%i means "not now": retryable HTTP_SERVER_ERROR, not dead', (status) => {
    expect(() => outcomeFor(status, Buffer.from('slow down'), 'http://h/x')).toThrow(expect.objectContaining({ code: 'HTTP_SERVER_ERROR' }));
    try {
      outcomeFor(status, Buffer.from(''), 'http://h/x');
    } catch (err) {
      expect(err).not.toBeInstanceOf(UnrecoverableError);
    }
  });

  test.each([400, 401, 403, 404, 409, 410, 422, 499])('%i → UnrecoverableError HTTP_CLIENT_ERROR with status, URL and body snippet', (status) => {
    const err = thrown(status, text(`no such thing: item ${status}`));
    expect(err).toBeInstanceOf(UnrecoverableError);
    expect(err.code).toBe('HTTP_CLIENT_ERROR');
    expect(err.message).toBe(`HTTP ${status} from ${SHOWN}: no such thing: item ${status}`);
  });

  test.each([500, 502, 503, 504, 599])('%i → retryable HttpHandlerError HTTP_SERVER_ERROR with status and body snippet', (status) => {
    const err = thrown(status, text('database down'));
    expect(err).toBeInstanceOf(HttpHandlerError);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect(err.code).toBe('HTTP_SERVER_ERROR');
    expect(err.message).toBe(`HTTP ${status} from ${SHOWN}: database down`);
  });

  test.each([0, 100, 101, 201, 202, 206, 301, 302, 304, 307])('%i → retryable HTTP_BAD_RESPONSE (only 200 and 204 are success)', (status) => {
    expectBadResponse(status, json({ done: true }), new RegExp(`unexpected HTTP ${status} from `));
  });

  test('204 is done, whatever the body', () => {
    expect(outcomeFor(204, Buffer.alloc(0), SHOWN)).toBeUndefined();
    expect(outcomeFor(204, text('ignored'), SHOWN)).toBeUndefined();
  });

  test('the snippet is the first 512 bytes, whitespace collapsed, "…" when cut; an empty body says so', () => {
    const long = thrown(404, text(`${'a'.repeat(600)}`));
    expect(long.message).toBe(`HTTP 404 from ${SHOWN}: ${'a'.repeat(512)}…`);
    const spaced = thrown(500, text('  line one\n\n\tline   two \r\n'));
    expect(spaced.message).toBe(`HTTP 500 from ${SHOWN}: line one line two`);
    expect(thrown(400, Buffer.alloc(0)).message).toBe(`HTTP 400 from ${SHOWN}: (empty body)`);
    expect(thrown(503, text('   ')).message).toBe(`HTTP 503 from ${SHOWN}: (empty body)`);
  });
});

describe('outcomeFor: 200 bodies', () => {
  test('empty or blank → done (undefined)', () => {
    expect(outcomeFor(200, Buffer.alloc(0), SHOWN)).toBeUndefined();
    expect(outcomeFor(200, text(' \r\n\t '), SHOWN)).toBeUndefined();
  });

  test('{"done": true} → done', () => {
    expect(outcomeFor(200, json({ done: true }), SHOWN)).toEqual({ done: true });
    expect(outcomeFor(200, text(' {"done":true}\n'), SHOWN)).toEqual({ done: true });
  });

  test('{"reschedule": {...}} keeps timing, priority and lane, and stores a JSON body as JSON text', () => {
    const outcome = outcomeFor(200, json({ reschedule: { delay: '5m', priority: 3, lane: 'slow', body: { step: 2 } } }), SHOWN);
    expect(outcome).toEqual({ reschedule: { delay: '5m', priority: 3, lane: 'slow', body: text('{"step":2}') } });
    expect(outcomeFor(200, json({ reschedule: { at: '2030-01-01T00:00:00Z' } }), SHOWN)).toEqual({ reschedule: { at: '2030-01-01T00:00:00Z' } });
    expect(outcomeFor(200, json({ reschedule: {} }), SHOWN)).toEqual({ reschedule: {} });
  });

  test('a JSON string body stays a JSON string (echoing the body back leaves it unchanged)', () => {
    const echoed = outcomeFor(200, json({ reschedule: { body: 'hello' } }), SHOWN) as { reschedule: { body: Buffer } };
    expect(echoed.reschedule.body).toEqual(text('"hello"'));
    expect(JSON.parse(echoed.reschedule.body.toString('utf8'))).toBe('hello');
    for (const value of [0, 42.5, true, null, [1, 'a'], { nested: { deep: [null] } }]) {
      const out = outcomeFor(200, json({ reschedule: { body: value } }), SHOWN) as { reschedule: { body: Buffer } };
      expect(JSON.parse(out.reschedule.body.toString('utf8'))).toEqual(value);
    }
  });

  test('explicit bodyEncoding "json" is the same as none, and is not passed on', () => {
    expect(outcomeFor(200, json({ reschedule: { delay: 1000, body: { a: 1 }, bodyEncoding: 'json' } }), SHOWN)).toEqual({
      reschedule: { delay: 1000, body: text('{"a":1}') },
    });
  });

  test('bodyEncoding "base64" decodes the body to bytes and is not passed on', () => {
    const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]);
    expect(outcomeFor(200, json({ reschedule: { delay: '1s', body: bytes.toString('base64'), bodyEncoding: 'base64' } }), SHOWN)).toEqual({
      reschedule: { delay: '1s', body: bytes },
    });
    // An empty base64 string is an empty body, not "keep the old body".
    expect(outcomeFor(200, json({ reschedule: { body: '', bodyEncoding: 'base64' } }), SHOWN)).toEqual({ reschedule: { body: Buffer.alloc(0) } });
  });

  test('bodyEncoding "base64" without a string body → HTTP_BAD_RESPONSE', () => {
    expectBadResponse(200, json({ reschedule: { bodyEncoding: 'base64' } }), /base64 string/);
    expectBadResponse(200, json({ reschedule: { body: { a: 1 }, bodyEncoding: 'base64' } }), /base64 string/);
    expectBadResponse(200, json({ reschedule: { body: 12, bodyEncoding: 'base64' } }), /base64 string/);
  });

  test('an unknown bodyEncoding → HTTP_BAD_RESPONSE (never a silent guess)', () => {
    expectBadResponse(200, json({ reschedule: { body: 'ff00', bodyEncoding: 'hex' } }), /bodyEncoding must be "json" or "base64"/);
  });

  test('done together with reschedule: the reschedule wins, as for module handlers', () => {
    expect(outcomeFor(200, json({ done: true, reschedule: { delay: '1s' } }), SHOWN)).toEqual({ reschedule: { delay: '1s' } });
    expect(outcomeFor(200, json({ done: false, reschedule: { delay: '1s' } }), SHOWN)).toEqual({ reschedule: { delay: '1s' } });
    // …and the module path agrees: decideOutcome reschedules { done: true, reschedule } too.
    const settlement = decideOutcome({ ok: true, value: { done: true, reschedule: { delay: 1000 } } }, decisionInput(), context());
    expect(settlement.kind).toBe('rescheduled');
  });

  test('done with a reschedule that is not an object → HTTP_BAD_RESPONSE, not a silent done', () => {
    expectBadResponse(200, json({ done: true, reschedule: null }), /neither/);
    expectBadResponse(200, json({ done: true, reschedule: 'later' }), /neither/);
    expectBadResponse(200, json({ done: true, reschedule: [] }), /neither/);
  });

  test('bad JSON → HTTP_BAD_RESPONSE naming the URL, with a snippet', () => {
    expectBadResponse(200, text('OK'), new RegExp(`^response from ${SHOWN} is not JSON: OK$`));
    expectBadResponse(200, text('{"done": true'), /is not JSON: \{"done": true$/);
    expectBadResponse(200, text('<html>oops</html>'), /is not JSON: <html>oops<\/html>/);
  });

  test('JSON that is not an object → HTTP_BAD_RESPONSE', () => {
    for (const v of ['true', '1', '"done"', 'null', '[]', '[{"done":true}]']) expectBadResponse(200, text(v), /must be a JSON object/);
  });

  test('an object that is neither done nor reschedule → HTTP_BAD_RESPONSE', () => {
    for (const v of [{}, { done: false }, { done: 'true' }, { done: 1 }, { status: 'ok' }, { reschedule: 'soon' }, { reschedule: 5 }, { reschedule: [] }]) {
      expectBadResponse(200, json(v), /is neither \{"done": true\} nor \{"reschedule": \{\.\.\.\}\}/);
    }
  });
});

// ---------------------------------------------------------------------------------------

function decisionInput(overrides: Partial<DecisionInput> = {}): DecisionInput {
  return {
    id: 'm1',
    lane: laneConfig({ name: 'web', retry: { maxAttempts: 3, backoff: { initialMs: 1000, factor: 2, maxMs: 60_000, jitter: 'none' } } }),
    body: text('{}'),
    priority: 0,
    generation: 0,
    runs: 0,
    attempt: 0,
    userHeaders: {},
    ...overrides,
  };
}

function context(): DecisionContext {
  const lane = decisionInput().lane;
  return { lanes: new Map([[lane.name, lane]]), delay: { unitMs: 1000, levels: 20, tolerance: 0, queueType: 'classic', holdMs: 0 }, now: 1_000_000 };
}

describe('outcomeFor errors through decideOutcome', () => {
  test('4xx: dead on the first attempt with code HTTP_CLIENT_ERROR and the status in the message', () => {
    const s = decideOutcome({ ok: false, error: thrown(404, text('gone')) }, decisionInput(), context());
    expect(s).toEqual({ kind: 'dead', info: { code: 'HTTP_CLIENT_ERROR', message: `HTTP 404 from ${SHOWN}: gone`, lane: 'web', attempts: 1 } });
  });

  test('5xx and a bad response: retried while attempts remain, then dead with their code', () => {
    for (const [err, code] of [
      [thrown(503, text('busy')), 'HTTP_SERVER_ERROR'],
      [thrown(200, text('nope')), 'HTTP_BAD_RESPONSE'],
    ] as const) {
      expect(decideOutcome({ ok: false, error: err }, decisionInput({ attempt: 0 }), context()).kind).toBe('retried');
      expect(decideOutcome({ ok: false, error: err }, decisionInput({ attempt: 1 }), context()).kind).toBe('retried');
      const last = decideOutcome({ ok: false, error: err }, decisionInput({ attempt: 2 }), context());
      expect(last).toMatchObject({ kind: 'dead', info: { code, attempts: 3 } });
    }
  });

  test('a base64 reschedule reaches the replacement message byte for byte', () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe]);
    const outcome = outcomeFor(200, json({ reschedule: { delay: 2000, body: bytes.toString('base64'), bodyEncoding: 'base64' } }), SHOWN);
    const s = decideOutcome({ ok: true, value: outcome }, decisionInput({ runs: 4 }), context());
    expect(s.kind).toBe('rescheduled');
    if (s.kind !== 'rescheduled') return;
    expect(s.message.body).toEqual(bytes);
    expect(s.message.runs).toBe(5);
    expect(s.message.attempt).toBe(0);
    expect(s.message.delayMs).toBe(2000);
  });
});

// ---------------------------------------------------------------------------------------

function message(body: Buffer, overrides: Partial<Omit<Message, 'json' | 'body'>> = {}): Message {
  return {
    id: 'msg-1',
    lane: 'web',
    body,
    json: <T>() => JSON.parse(body.toString('utf8')) as T,
    priority: 4,
    runs: 7,
    attempt: 2,
    dueAt: new Date('2024-05-06T07:08:09.010Z'),
    early: false,
    redelivered: false,
    headers: { 'x-orbit-runs': 7 },
    ...overrides,
  };
}

describe('requestFor', () => {
  test('a JSON body goes as JSON, with every documented field and nothing else', () => {
    const doc = requestFor(message(json({ url: 'https://example.com', n: [1, 2] })));
    expect(doc).toEqual({
      id: 'msg-1',
      lane: 'web',
      body: { url: 'https://example.com', n: [1, 2] },
      bodyEncoding: 'json',
      priority: 4,
      runs: 7,
      attempt: 2,
      dueAt: '2024-05-06T07:08:09.010Z',
      early: false,
    });
    // What goes on the wire parses back to the same document.
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  test('any JSON value counts: strings, numbers, null, arrays', () => {
    for (const [raw, value] of [
      ['"hello"', 'hello'],
      ['12', 12],
      ['null', null],
      ['[1,{"a":2}]', [1, { a: 2 }]],
      [' {"a":1}\n', { a: 1 }],
    ] as const) {
      const doc = requestFor(message(text(raw)));
      expect(doc.bodyEncoding).toBe('json');
      expect(doc.body).toEqual(value);
    }
  });

  test('a body that is not JSON goes as base64, and decodes to the same bytes', () => {
    for (const bytes of [Buffer.from([0xff, 0x00]), text('plain text, not JSON'), text('{"half":'), Buffer.from([0xef, 0xbb, 0xbf, 0x7b, 0x7d])]) {
      const doc = requestFor(message(bytes));
      expect(doc.bodyEncoding).toBe('base64');
      expect(typeof doc.body).toBe('string');
      expect(Buffer.from(doc.body as string, 'base64')).toEqual(bytes);
    }
    expect(requestFor(message(Buffer.from([0xff, 0x00]))).body).toBe('/wA=');
  });

  test('an empty body is not JSON: base64 "" (so a handler can tell it from null)', () => {
    const doc = requestFor(message(Buffer.alloc(0)));
    expect(doc).toMatchObject({ body: '', bodyEncoding: 'base64' });
  });

  test('early and the due time are passed through', () => {
    const doc = requestFor(message(json({}), { early: true, dueAt: new Date(0), runs: 0, attempt: 0, priority: 0 }));
    expect(doc).toMatchObject({ early: true, dueAt: '1970-01-01T00:00:00.000Z', runs: 0, attempt: 0, priority: 0 });
  });

  test('a JSON body round-trips through the response unchanged; a binary one through base64', () => {
    for (const raw of ['"hello"', '{"a":[1,2]}', '7', 'null']) {
      const doc = requestFor(message(text(raw)));
      const out = outcomeFor(200, json({ reschedule: { body: doc.body, bodyEncoding: doc.bodyEncoding } }), SHOWN) as { reschedule: { body: Buffer } };
      expect(out.reschedule.body.toString('utf8')).toBe(JSON.stringify(JSON.parse(raw)));
    }
    const bytes = Buffer.from([0xff, 0x00, 0x01]);
    const doc = requestFor(message(bytes));
    const out = outcomeFor(200, json({ reschedule: { body: doc.body, bodyEncoding: doc.bodyEncoding } }), SHOWN) as { reschedule: { body: Buffer } };
    expect(out.reschedule.body).toEqual(bytes);
  });
});
