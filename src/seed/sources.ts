import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { InvalidMessageError } from '../errors';
import { parsePublishLine } from '../publish/json-lines';
import { DescendingSpread } from './descending-spread';
import type { SeedItem } from './seeder';

/**
 * Numbered items from JSON lines. The first `skip` lines are counted but not parsed, so a
 * resumed run numbers lines exactly as the failed one did. Blank lines are skipped silently.
 * Lines end at `\n`, `\r\n` or a lone `\r`, as with `readline`.
 */
export async function* jsonLines(input: Readable, skip = 0): AsyncGenerator<SeedItem> {
  for await (const batch of jsonLineBatches(input, skip)) yield* batch;
}

/**
 * `jsonLines` a chunk of input at a time: the seeder takes the batches whole, so it pays one
 * promise per chunk read rather than one per line.
 */
export async function* jsonLineBatches(input: Readable, skip = 0): AsyncGenerator<SeedItem[]> {
  const decoder = new StringDecoder('utf8');
  let line = 0;
  let rest = '';
  const take = (text: string, out: SeedItem[]): void => {
    line++;
    if (line <= skip) return;
    const bytes = Buffer.byteLength(text) + 1;
    if (text.trim() === '') return;
    let parsed: SeedItem['parsed'];
    try {
      parsed = parsePublishLine(text, line);
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      parsed = err;
    }
    out.push({ line, parsed, bytes });
  };
  /** Every complete line of `text` into a batch; an unfinished last line (or a trailing `\r`, perhaps half of `\r\n`) is kept. */
  const split = (text: string): SeedItem[] => {
    const out: SeedItem[] = [];
    let start = 0;
    let cr = text.indexOf('\r');
    for (;;) {
      const lf = text.indexOf('\n', start);
      if (cr >= 0 && cr < start) cr = text.indexOf('\r', start);
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        if (cr === text.length - 1) break; // `\r` last: wait for the next chunk to tell `\r\n` from `\r`
        take(text.slice(start, cr), out);
        start = text.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
      } else if (lf >= 0) {
        take(text.slice(start, lf), out);
        start = lf + 1;
      } else break;
    }
    rest = text.slice(start);
    return out;
  };
  for await (const chunk of input as AsyncIterable<Buffer | string>) {
    const text = rest + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    const batch = split(text);
    if (batch.length > 0) yield batch;
  }
  let last = rest + decoder.end();
  if (last.endsWith('\r')) last = last.slice(0, -1);
  rest = '';
  if (last.length > 0) {
    const batch: SeedItem[] = [];
    take(last, batch);
    if (batch.length > 0) yield batch;
  }
}

export function openInput(file: string | undefined): Readable {
  return !file || file === '-' ? process.stdin : createReadStream(file);
}

/**
 * Synthetic messages for load tests: `count` lines with ids `gen-<n>` (so `--skip` resumes
 * exactly) and JSON bodies `{"n":<n>,"pad":"xx…"}` padded to about `bytes` bytes (given as
 * their encoded bytes: nothing to stringify per message).
 *
 * With `spreadMs`, the delays are `count` uniform random draws from [0, spreadMs) — the
 * same distribution as `--spread` gives lines — but produced in descending order (the
 * order statistics, by the recursion max_k = max_{k+1} · U^(1/k)). Consecutive messages
 * then share a due time, which is what lets a bundled lane fill its bundles while seeding.
 *
 * Synchronous: the seeder then pays no promise per message.
 */
export function* generated(count: number, bytes: number, skip = 0, spreadMs?: number, random: () => number = Math.random): Generator<SeedItem> {
  const base = JSON.stringify({ n: 0, pad: '' }).length;
  const pads = new Map<number, string>();
  const spread = spreadMs === undefined ? undefined : new DescendingSpread(count, spreadMs, random);
  for (let line = skip + 1; line <= count; line++) {
    const padLength = Math.max(0, bytes - base - String(line).length);
    let pad = pads.get(padLength);
    if (pad === undefined) pads.set(padLength, (pad = 'x'.repeat(padLength)));
    // Exactly JSON.stringify({ n: line, pad }).
    const body = Buffer.from(`{"n":${line},"pad":"${pad}"}`, 'latin1');
    const options = spread === undefined ? { id: `gen-${line}` } : { id: `gen-${line}`, delay: spread.delayFor(line) };
    yield { line, bytes: 0, parsed: { lane: undefined, body, options } };
  }
}

/**
 * The number of the last line of a file, as `jsonLineBatches` numbers lines (ending at `\n`,
 * `\r\n` or a lone `\r`; an unterminated last line counts). Read once, without parsing, so
 * `--spread` can hand out its delays in order.
 */
export async function countLines(file: string): Promise<number> {
  let lines = 0;
  let afterCr = false;
  let open = false;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === 10) {
        if (!afterCr) lines++;
        afterCr = false;
        open = false;
      } else if (c === 13) {
        lines++;
        afterCr = true;
        open = false;
      } else {
        afterCr = false;
        open = true;
      }
    }
  }
  return open ? lines + 1 : lines;
}
