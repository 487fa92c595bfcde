/**
 * A seeded PRNG (mulberry32) and generators of random and adversarial input, so a fuzz
 * failure names a seed and a case number that reproduce it exactly:
 * `ORBIT_FUZZ_SEED=<seed> npx jest test/faults/fuzz.test.ts`.
 */
import { mulberry32 } from '../helpers/prng';

export const FUZZ_SEED = Number(process.env.ORBIT_FUZZ_SEED ?? 20261121) >>> 0;

/** Keys that try to reach an object's prototype. */
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

const NUMBERS = [
  0, -0, 1, -1, 0.5, -0.5, 2, 9, 10, 255, 256, 1000, 1e21, 1e308, -1e308, 5e-324, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64,
  Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 1.7976931348623157e308, 123456.789,
];
/** Number literals as JSON text, some beyond what a double holds. */
export const NUMBER_TEXTS = ['1e999', '-1e999', '123456789012345678901234567890', '0.0000000000000000000000001', '1E400', '-0', '1e-400', '9007199254740993'];
const STRINGS = [
  '', ' ', '0', '-1', '1e3', 'NaN', 'Infinity', '10s', '90s', '-5s', '1.5h', '2d', '999999999d', '1e400ms', ' 7 ', '\n', 'true', 'null',
  'amqp://', 'amqps://u:p@h:1/v', 'work', 'fast', '__proto__', 'constructor', 'prototype', 'x-orbit-runs', '../../etc/passwd', '/dev/null',
  '\u0000', '\u202e', '\ud800', '\udfff', '😀', 'é', '\uffff', '%00', '${HOME}', '"', '\\', '2026-11-21T00:00:00Z', 'not-a-date',
];

export class Gen {
  readonly next: () => number;

  constructor(seed: number) {
    this.next = mulberry32(seed);
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  number(): number {
    switch (this.int(4)) {
      case 0:
        return this.pick(NUMBERS);
      case 1:
        return this.int(2000) - 1000;
      case 2:
        return (this.next() - 0.5) * 10 ** this.int(30);
      default:
        return this.int(100);
    }
  }

  /** Random text: printable, any code unit (lone surrogates included), or a known nasty string. */
  string(maxLength = 24): string {
    switch (this.int(4)) {
      case 0:
        return this.pick(STRINGS);
      case 1: {
        let s = '';
        const n = this.int(maxLength);
        for (let i = 0; i < n; i++) s += String.fromCharCode(this.int(0x10000));
        return s;
      }
      case 2: {
        let s = '';
        const n = this.int(maxLength);
        for (let i = 0; i < n; i++) s += String.fromCharCode(32 + this.int(95));
        return s;
      }
      default:
        return this.pick(['work', 'other', 'id-1', 'k', 'x']) + (this.bool() ? String(this.int(100)) : '');
    }
  }

  key(known: readonly string[] = []): string {
    const r = this.next();
    if (r < 0.15) return this.pick(PROTO_KEYS);
    if (r < 0.6 && known.length > 0) return this.pick(known);
    return this.string(12);
  }

  /** A random JSON value (JSON.stringify-able; numbers may be ±Infinity → null). */
  json(depth = 3, known: readonly string[] = []): unknown {
    const r = this.next();
    if (depth <= 0 || r < 0.45) {
      switch (this.int(5)) {
        case 0:
          return null;
        case 1:
          return this.bool();
        case 2:
          return this.number();
        default:
          return this.string();
      }
    }
    if (r < 0.7) return Array.from({ length: this.int(5) }, () => this.json(depth - 1, known));
    const out: Record<string, unknown> = {};
    const n = this.int(6);
    for (let i = 0; i < n; i++) Object.defineProperty(out, this.key(known), { value: this.json(depth - 1, known), enumerable: true, writable: true, configurable: true });
    return out;
  }

  /** Random bytes, often not valid UTF-8. */
  bytes(max = 64): Buffer {
    const b = Buffer.alloc(this.int(max));
    for (let i = 0; i < b.length; i++) b[i] = this.int(256);
    return b;
  }

  /** `text` with a few random edits: flips, cuts, insertions of JSON punctuation. */
  mutate(text: string): string {
    let s = text;
    const edits = 1 + this.int(4);
    for (let e = 0; e < edits; e++) {
      const at = this.int(s.length + 1);
      switch (this.int(4)) {
        case 0:
          s = s.slice(0, at) + s.slice(at + 1 + this.int(4));
          break;
        case 1:
          s = s.slice(0, at) + this.pick(['{', '}', '[', ']', '"', ':', ',', '\\', '\u0000', 'e', '-', '1e999', 'null']) + s.slice(at);
          break;
        case 2:
          s = s.slice(0, at);
          break;
        default:
          s = s.slice(0, at) + String.fromCharCode(this.int(0x10000)) + s.slice(at + 1);
      }
    }
    return s;
  }
}

/** `[[[…]]]` nested `depth` deep, as JSON text (deep enough to overflow a recursive parser). */
export function deepJson(depth: number, open = '[', close = ']'): string {
  return open.repeat(depth) + close.repeat(depth);
}

/** True when nothing was added to Object.prototype (the classic prototype pollution). */
export function prototypeClean(): boolean {
  const probe = {} as Record<string, unknown>;
  return probe.polluted === undefined && Object.getOwnPropertyNames(Object.prototype).every((k) => BASELINE_PROTO_KEYS.has(k));
}

const BASELINE_PROTO_KEYS = new Set(Object.getOwnPropertyNames(Object.prototype));
