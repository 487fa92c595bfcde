import { BadBodyError } from '../../src/errors';
import { BUNDLE_VERSION, decodeBundle, encodeBundle, entrySize, type BundleEntry } from '../../src/message/bundle';

const entry = (i: number, body = `{"i":${i}}`): BundleEntry => ({
  id: `id-${i}-é`,
  key: i % 2 ? `k${i}` : undefined,
  runs: i,
  attempt: i % 3,
  dueAt: 1_700_000_000_000 + i,
  generation: 1_700_000_000_000 + i / 1000,
  body: Buffer.from(body),
});

describe('bundle format', () => {
  test('round-trips entries exactly, keys optional, bodies as bytes', () => {
    const entries = Array.from({ length: 100 }, (_, i) => entry(i));
    entries.push({ ...entry(100), body: Buffer.from([0, 255, 1, 2]) });
    const buf = encodeBundle(entries);
    expect(buf.length).toBe(5 + entries.reduce((n, e) => n + entrySize(e), 0));
    const back = decodeBundle(buf, BUNDLE_VERSION);
    expect(back.map((e) => ({ ...e, body: e.body.toString('hex') }))).toEqual(entries.map((e) => ({ ...e, body: e.body.toString('hex') })));
  });

  test('an empty bundle and a single entry decode', () => {
    expect(decodeBundle(encodeBundle([]), 2)).toEqual([]);
    expect(decodeBundle(encodeBundle([entry(1)]), BigInt(2))).toHaveLength(1);
  });

  test('a version-1 bundle (written before generations) still decodes, each entry as generation 0', () => {
    // Version 1 by hand: the version 2 layout without the f64 generation.
    const body = Buffer.from('{"a":1}');
    const v1 = Buffer.alloc(5 + 2 + 2 + 2 + 20 + body.length);
    v1[0] = 1;
    v1.writeUInt32BE(1, 1);
    let o = 5;
    o = v1.writeUInt16BE(2, o);
    o += v1.write('id', o);
    o = v1.writeUInt16BE(0, o);
    o = v1.writeUInt32BE(3, o);
    o = v1.writeUInt32BE(1, o);
    o = v1.writeDoubleBE(1_700_000_000_000, o);
    o = v1.writeUInt32BE(body.length, o);
    body.copy(v1, o);
    expect(decodeBundle(v1, 1)).toEqual([{ id: 'id', key: undefined, runs: 3, attempt: 1, dueAt: 1_700_000_000_000, generation: 0, body }]);
    // The header's version decides the layout: the same bytes as version 2 are corrupt.
    expect(() => decodeBundle(v1, 2)).toThrow(BadBodyError);
  });

  test('unknown versions, truncation, trailing bytes and absurd counts are BadBodyError', () => {
    const buf = encodeBundle([entry(1), entry(2)]);
    expect(() => decodeBundle(buf, 3)).toThrow(BadBodyError);
    expect(() => decodeBundle(buf, 0)).toThrow(BadBodyError);
    for (let cut = 0; cut < buf.length; cut++) expect(() => decodeBundle(buf.subarray(0, cut), 2)).toThrow(BadBodyError);
    expect(() => decodeBundle(Buffer.concat([buf, Buffer.from([0])]), 2)).toThrow(/trailing/);
    const huge = Buffer.from(buf);
    huge.writeUInt32BE(0xffffffff, 1);
    expect(() => decodeBundle(huge, 2)).toThrow(/cannot fit/);
  });

  test('random bytes never crash the decoder', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(Math.floor(rnd() * 200));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      const version = 1 + (i % 2);
      if (b.length > 0) b[0] = version;
      try {
        decodeBundle(b, version);
      } catch (err) {
        expect(err).toBeInstanceOf(BadBodyError);
      }
    }
  });

  test('encodeBundle checks a size given by the caller', () => {
    const entries = [{ id: 'a', key: undefined, runs: 0, attempt: 0, dueAt: 1, body: Buffer.from('x') }];
    const size = 5 + entrySize(entries[0]!);
    expect(decodeBundle(encodeBundle(entries, size), 2)).toHaveLength(1);
    expect(() => encodeBundle(entries, size + 1)).toThrow(RangeError);
  });
});
