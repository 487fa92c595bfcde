/**
 * The spread delays of a counted file: uniform over [0, spread) as a set, handed out in
 * descending order, with skipped lines advancing the sequence.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DescendingSpread } from '../../src/seed/descending-spread';
import { countLines, jsonLineBatches } from '../../src/seed/sources';

/** A seeded generator, so the statistical checks cannot flake. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x + 0.5) / 2 ** 32;
  };
}

describe('DescendingSpread', () => {
  test('descending, in [0, spread), and uniform as a set (deciles within 10 % of a tenth)', () => {
    const n = 100_000;
    const spread = new DescendingSpread(n, 3_600_000, lcg(7));
    const delays = Array.from({ length: n }, (_, i) => spread.delayFor(i + 1));
    for (let i = 1; i < n; i++) expect(delays[i]! <= delays[i - 1]!).toBe(true);
    expect(delays[0]).toBeLessThan(3_600_000);
    expect(delays[n - 1]).toBeGreaterThanOrEqual(0);
    const deciles = new Array<number>(10).fill(0);
    for (const d of delays) deciles[Math.floor(d / 360_000)]!++;
    for (const count of deciles) expect(Math.abs(count - n / 10)).toBeLessThan(n / 100);
  });

  test('skipped lines advance the sequence; lines past the count draw independently', () => {
    const all = new DescendingSpread(1000, 60_000, lcg(3));
    const full = Array.from({ length: 1000 }, (_, i) => all.delayFor(i + 1));
    const skipping = new DescendingSpread(1000, 60_000, lcg(3));
    // Only every tenth line asks (the others gave their own delay): same values at those lines.
    for (let line = 10; line <= 1000; line += 10) expect(skipping.delayFor(line)).toBe(full[line - 1]);
    const past = skipping.delayFor(1001);
    expect(past).toBeGreaterThanOrEqual(0);
    expect(past).toBeLessThan(60_000);
  });
});

describe('countLines', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'orbit-count-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The last line number jsonLineBatches gives the same line structure (every line made non-blank, so each yields an item). */
  async function lastLineNumber(text: string): Promise<number> {
    const parts = text.split(/(\r\n|\r|\n)/);
    const filled = parts.map((p, i) => (i % 2 === 1 || (i === parts.length - 1 && p === '') ? p : '{"body":0}')).join('');
    let last = 0;
    for await (const batch of jsonLineBatches(Readable.from([Buffer.from(filled)]))) for (const item of batch) last = item.line;
    return last;
  }

  test.each([
    ['\\n endings', '{"body":1}\n{"body":2}\n'],
    ['no final newline', '{"body":1}\n{"body":2}'],
    ['\\r\\n endings', '{"body":1}\r\n{"body":2}\r\n{"body":3}'],
    ['lone \\r', '{"body":1}\r{"body":2}\r'],
    ['blank lines', '{"body":1}\n\n\n{"body":2}\n\n'],
    ['empty', ''],
  ])('numbers lines as the reader does: %s', async (_name, text) => {
    const file = join(dir, 'f.jsonl');
    writeFileSync(file, text);
    expect(await countLines(file)).toBe(await lastLineNumber(text));
  });
});
