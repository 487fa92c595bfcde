import { BadBodyError } from '../errors';
import { headersOf } from './headers';

/**
 * The bundle format (DESIGN.md, "Bundles"): many logical messages that share lane,
 * priority and due time (to the unit) in one AMQP message. Marked by the header
 * `x-orbit-bundle` carrying the format version; plain messages have no such header and
 * stay accepted everywhere. Pure.
 *
 * Version 2, big-endian:
 *   u8 version (2) · u32 count · count × entry
 *   entry: u16 idLen · id (UTF-8) · u16 keyLen · key (UTF-8, 0 = none) · u32 runs ·
 *          u32 attempt · f64 dueAt (epoch ms) · f64 generation · u32 bodyLen · body
 * 31 bytes of framing per message plus its id: compact next to ~300 bytes of AMQP
 * properties and headers per message that a bundle shares. Version 1 (written before
 * cancellation) is the same without the generation; it is still read, as generation 0.
 */
export const BUNDLE_HEADER = 'x-orbit-bundle';
export const BUNDLE_VERSION = 2;
/** The oldest version this orbit reads. */
const OLDEST_BUNDLE_VERSION = 1;

export interface BundleEntry {
  readonly id: string;
  readonly key: string | undefined;
  readonly runs: number;
  readonly attempt: number;
  readonly dueAt: number;
  /** 0 in a version-1 bundle. */
  readonly generation: number;
  readonly body: Buffer;
}

/** What `encodeBundle` takes: an entry, or anything shaped like one (an OutgoingMessage). */
export type EntryInput = Omit<BundleEntry, 'key' | 'generation'> & { readonly key?: string | undefined; readonly generation?: number };

/** Bytes an entry takes in a bundle (for `maxBytes`). */
export function entrySize(e: { readonly id: string; readonly key?: string | undefined; readonly body: Buffer }): number {
  return 2 + Buffer.byteLength(e.id) + 2 + (e.key === undefined ? 0 : Buffer.byteLength(e.key)) + 4 + 4 + 8 + 8 + 4 + e.body.length;
}

/**
 * Encodes entries into one bundle body. `size`, when the caller already summed it
 * (`5 + Σ entrySize`), saves measuring every entry again; a wrong one throws rather than
 * writing a corrupt bundle.
 */
export function encodeBundle(entries: readonly EntryInput[], size?: number): Buffer {
  if (size === undefined) {
    size = 5;
    for (const e of entries) size += entrySize(e);
  }
  const buf = Buffer.allocUnsafe(size);
  buf[0] = BUNDLE_VERSION;
  buf.writeUInt32BE(entries.length, 1);
  let o = 5;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const idLen = writeString(buf, e.id, o + 2);
    buf.writeUInt16BE(idLen, o);
    o += 2 + idLen;
    const keyLen = e.key === undefined ? 0 : writeString(buf, e.key, o + 2);
    buf.writeUInt16BE(keyLen, o);
    o += 2 + keyLen;
    o = buf.writeUInt32BE(e.runs, o);
    o = buf.writeUInt32BE(e.attempt, o);
    o = buf.writeDoubleBE(e.dueAt, o);
    o = buf.writeDoubleBE(e.generation ?? 0, o);
    o = buf.writeUInt32BE(e.body.length, o);
    o += e.body.copy(buf, o);
  }
  if (o !== size) throw new RangeError(`bundle size mismatch: wrote ${o} bytes, expected ${size}`);
  return buf;
}

/**
 * Writes `text` as UTF-8 at `offset`, returning the bytes written. Short ASCII strings (ids
 * such as `gen-123` or UUIDs) are copied in a plain loop: cheaper than a native call each.
 */
function writeString(buf: Buffer, text: string, offset: number): number {
  const n = text.length;
  if (n <= 64) {
    let i = 0;
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      buf[offset + i] = c;
    }
    if (i === n) return n;
  }
  return buf.write(text, offset, 'utf8');
}

/**
 * Decodes a bundle; every length is checked against the buffer, so a corrupt or hostile
 * bundle is a BadBodyError (and goes to the dead-letter queue whole), never a crash.
 * Entry bodies are views into `buf`, not copies.
 */
export function decodeBundle(buf: Buffer, version: unknown): BundleEntry[] {
  const v = bundleVersion(version);
  if (v === undefined) {
    throw new BadBodyError(`unsupported bundle version ${String(version)} (this orbit reads versions ${OLDEST_BUNDLE_VERSION}–${BUNDLE_VERSION})`);
  }
  const need = (o: number, n: number) => {
    if (o + n > buf.length) throw new BadBodyError(`corrupt bundle: needs ${o + n} bytes, has ${buf.length}`);
  };
  need(0, 5);
  if (buf.readUInt8(0) !== v) throw new BadBodyError(`corrupt bundle: version byte ${buf.readUInt8(0)}`);
  const count = buf.readUInt32BE(1);
  // Fixed fields after the key: runs, attempt, dueAt, (generation,) bodyLen.
  const fixed = v === 1 ? 20 : 28;
  // Each entry takes at least 4 + fixed bytes: a count that cannot fit is corrupt, not a huge allocation.
  if (count > (buf.length - 5) / (4 + fixed)) throw new BadBodyError(`corrupt bundle: ${count} entries cannot fit in ${buf.length} bytes`);
  const out: BundleEntry[] = [];
  let o = 5;
  for (let i = 0; i < count; i++) {
    need(o, 2);
    const idLen = buf.readUInt16BE(o);
    o += 2;
    need(o, idLen + 2);
    const id = buf.toString('utf8', o, o + idLen);
    o += idLen;
    const keyLen = buf.readUInt16BE(o);
    o += 2;
    need(o, keyLen + fixed);
    const key = keyLen === 0 ? undefined : buf.toString('utf8', o, o + keyLen);
    o += keyLen;
    const runs = buf.readUInt32BE(o);
    const attempt = buf.readUInt32BE(o + 4);
    const dueAt = buf.readDoubleBE(o + 8);
    const generation = v === 1 ? 0 : buf.readDoubleBE(o + 16);
    const bodyLen = buf.readUInt32BE(o + fixed - 4);
    o += fixed;
    need(o, bodyLen);
    if (id === '' || !Number.isFinite(dueAt)) throw new BadBodyError(`corrupt bundle: entry ${i} has no id or no due time`);
    out.push({ id, key, runs, attempt, dueAt, generation: Number.isFinite(generation) && generation > 0 ? generation : 0, body: buf.subarray(o, o + bodyLen) });
    o += bodyLen;
  }
  if (o !== buf.length) throw new BadBodyError(`corrupt bundle: ${buf.length - o} trailing bytes`);
  return out;
}

/** The bundle format version a header names, when this orbit reads it. */
export function bundleVersion(version: unknown): number | undefined {
  const v = typeof version === 'bigint' ? Number(version) : version;
  return typeof v === 'number' && Number.isInteger(v) && v >= OLDEST_BUNDLE_VERSION && v <= BUNDLE_VERSION ? v : undefined;
}

/** The largest allowance a bundle's header holds (u32 ms, about 49.7 days); a larger one is written as this. */
export const MAX_BUNDLE_ALLOWANCE_MS = 0xffff_ffff;

/**
 * A bundle's `x-orbit-allowed` header: each entry's allowed lateness (ms, rounded up, capped
 * at `MAX_BUNDLE_ALLOWANCE_MS`), 4 bytes each, in entry order. A header beside the format, not
 * in it: an orbit that does not know it ignores it and reads the bundle as before, so
 * publishers and daemons can be upgraded in any order.
 */
export function encodeAllowances(count: number, allowedMs: (i: number) => number): Buffer {
  const buf = Buffer.allocUnsafe(4 * count);
  for (let i = 0; i < count; i++) buf.writeUInt32BE(Math.min(MAX_BUNDLE_ALLOWANCE_MS, Math.max(0, Math.ceil(allowedMs(i)))), 4 * i);
  return buf;
}

/**
 * Entry `i`'s allowance from a bundle's `x-orbit-allowed` header; undefined when the header
 * is missing, does not hold exactly `count` allowances, or holds 0 for the entry.
 */
export function allowanceOf(header: unknown, count: number, i: number): number | undefined {
  if (!Buffer.isBuffer(header) || header.length !== 4 * count) return undefined;
  const ms = header.readUInt32BE(4 * i);
  return ms > 0 ? ms : undefined;
}

/**
 * Logical messages in a delivery: a bundle's count (its first 5 bytes, the format's version
 * and count), else 1. Read, not decoded: the lane decodes it when it runs.
 */
export function logicalCount(msg: { readonly content: Buffer; readonly properties: { readonly headers?: unknown } }): number {
  if (bundleVersion(headersOf(msg)[BUNDLE_HEADER]) === undefined || msg.content.length < 5) return 1;
  return Math.max(1, msg.content.readUInt32BE(1));
}
