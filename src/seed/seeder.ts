import { InvalidMessageError, errorMessage, PublishError } from '../errors';
import type { OutgoingMessage } from '../message/types';
import { lineError, type PublishLine } from '../publish/json-lines';
import type { Settle } from '../publish/bundler';
import { TokenBucket } from '../worker/token-bucket';

/** One numbered input line, parsed or not. */
export interface SeedItem {
  readonly line: number;
  /** The parsed line, or the error that made it malformed. */
  readonly parsed: PublishLine | InvalidMessageError;
  /** Bytes of input this item consumed (for progress over a file). */
  readonly bytes: number;
}

export interface SeedOptions {
  /** Lane for lines that name none. */
  readonly lane?: string;
  /** Timing for lines that give none (CLI flags); a line's own delay or at wins over both. */
  readonly defaults?: { readonly delay?: string | number; readonly at?: string | number; readonly priority?: number };
  /** Lines that give neither delay nor at get a random delay in [0, spreadMs). */
  readonly spreadMs?: number;
  /**
   * With `spreadMs`: the delay of a given line, instead of an independent draw per line
   * (`DescendingSpread` over a counted file, so bundles fill).
   */
  readonly spreadFor?: (line: number) => number;
  /** Most publishes per second. @defaultValue unlimited */
  readonly rate?: number;
  /** A malformed line stops the run (otherwise it is reported and skipped). */
  readonly strict?: boolean;
  /** Unconfirmed logical messages in flight (waiting in open bundles included). @defaultValue 2000 */
  readonly window?: number;
  readonly random?: () => number;
  /** Aborting stops reading; what is in flight is still awaited and counted. */
  readonly signal?: AbortSignal;
}

export interface SeedProgress {
  /** Lines read (skipped ones included). */
  readonly read: number;
  readonly confirmed: number;
  readonly malformed: number;
  readonly bytes: number;
  /** Every line up to this one is confirmed or was malformed: resume with `--skip` this. */
  readonly doneThrough: number;
}

export interface SeedResult extends SeedProgress {
  readonly elapsedMs: number;
  /** Why the run stopped early, if it did. */
  readonly failure?: unknown;
}

/** A line's timing, else the defaults, else a random spread; a line's delay or at wins over both. */
function timingOf(o: PublishLine['options'], line: number, options: SeedOptions, random: () => number): PublishLine['options'] {
  const d = options.defaults;
  const priority = o.priority ?? d?.priority;
  if (o.delay !== undefined || o.at !== undefined) return priority === o.priority ? o : { ...o, priority };
  if (d?.delay !== undefined || d?.at !== undefined) return { ...o, delay: d.delay, at: d.at, priority };
  if (options.spreadMs) {
    const delay = options.spreadFor ? options.spreadFor(line) : Math.floor(random() * options.spreadMs);
    return { ...o, delay, priority };
  }
  return priority === o.priority ? o : { ...o, priority };
}

/** What the seeder needs from a publisher: validate a line, send a prepared message. */
export interface SeedTarget {
  prepare(lane: string, body: unknown, options: PublishLine['options']): OutgoingMessage;
  send(message: OutgoingMessage): Promise<unknown>;
  /**
   * Optional fast path for `send` (the Scheduler has it): `settle(token, ok, error)` once
   * confirmed or failed, never synchronously; no promise per message.
   */
  sendWith?(message: OutgoingMessage, settle: Settle, token: number): void;
  /** Optional: send open bundles now, oldest first, leaving at most `keep` messages waiting in them. */
  flush?(keep: number): void;
}

/**
 * Where the items come from. A synchronous source (`generated`) costs no promise per item;
 * an asynchronous one may yield batches (`jsonLineBatches`) to cost one per batch.
 */
export type SeedSource = Iterable<SeedItem> | AsyncIterable<SeedItem | readonly SeedItem[]>;

/** A synchronous source yields to the event loop this often, so confirms and socket writes keep flowing. */
const YIELD_EVERY = 2048;

/**
 * Seeds JSON lines as fast as the broker confirms them: publishes are pipelined with a
 * bounded window of unconfirmed logical messages (memory stays flat whatever the input
 * size), an optional rate limit, and exact bookkeeping of which lines are confirmed, so a
 * failed run says where to resume.
 *
 * On a bundled lane, messages waiting in open bundles count against the window too. When
 * the window is full, the oldest open bundles are sent at once (down to half the window)
 * instead of waiting out their linger: with input in due-time order (what `--generate
 * --spread` produces) those bundles are complete anyway.
 */
export async function seed(
  items: SeedSource,
  target: SeedTarget,
  options: SeedOptions,
  onMalformed: (line: number, error: InvalidMessageError) => void,
  onProgress?: (p: SeedProgress) => void,
): Promise<SeedResult> {
  const started = Date.now();
  const window = Math.max(1, options.window ?? 2000);
  const keepLingering = Math.floor(window / 2);
  const bucket = options.rate ? new TokenBucket(options.rate, Math.max(1, Math.min(options.rate, window))) : undefined;
  const random = options.random ?? Math.random;
  const pending = new PendingLines();
  let outstanding = 0;
  let read = 0;
  let confirmed = 0;
  let malformed = 0;
  let bytes = 0;
  let lastLine = 0;
  let failure: unknown;
  /** Lowest line whose publish failed: nothing at or after it counts as done. */
  let firstFailed = Infinity;
  /** Woken when fewer than `wakeBelow` messages are outstanding, or a publish failed. */
  let wake: (() => void) | undefined;
  let wakeBelow = 0;

  const settle: Settle = (line, ok, err) => {
    outstanding--;
    pending.delete(line);
    if (ok) confirmed++;
    else {
      firstFailed = Math.min(firstFailed, line);
      failure ??= new PublishError(`line ${line}: ${errorMessage(err)}`, { cause: err });
    }
    if (wake && (outstanding < wakeBelow || failure !== undefined)) {
      const w = wake;
      wake = undefined;
      w();
    }
  };
  const send = target.sendWith
    ? target.sendWith.bind(target)
    : (message: OutgoingMessage, done: Settle, line: number): void => {
        target.send(message).then(
          () => done(line, true),
          (err: unknown) => done(line, false, err),
        );
      };
  /** Waits until fewer than `limit` are outstanding (sending lingering bundles first), or a failure. */
  const room = async (limit: number, keep: number): Promise<void> => {
    while (outstanding >= limit && (limit === 1 || failure === undefined)) {
      target.flush?.(keep);
      wakeBelow = limit;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  };
  const doneThrough = (): number => {
    const lowest = Math.min(firstFailed, pending.lowest());
    return Number.isFinite(lowest) ? lowest - 1 : lastLine;
  };
  const progress = (): SeedProgress => ({ read, confirmed, malformed, bytes, doneThrough: doneThrough() });

  /** Validates an item: its message, SKIP for a malformed line passed over, or STOP. */
  const prepare = (item: SeedItem): OutgoingMessage | typeof SKIP | typeof STOP => {
    if (options.signal?.aborted) {
      failure = new PublishError('interrupted', { code: 'INTERRUPTED' });
      firstFailed = Math.min(firstFailed, item.line);
      return STOP;
    }
    read++;
    bytes += item.bytes;
    lastLine = item.line;
    try {
      if (item.parsed instanceof InvalidMessageError) throw item.parsed;
      const { lane, body, options: o } = item.parsed;
      const laneName = lane ?? options.lane;
      if (!laneName) throw lineError(item.line, 'no lane (give "lane" or --lane)');
      return target.prepare(laneName, body, timingOf(o, item.line, options, random));
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      // The publisher's own checks do not know the line: name it.
      const lineErr = err.line === item.line ? err : lineError(item.line, err.message, err);
      malformed++;
      onMalformed(item.line, lineErr);
      if (options.strict) {
        failure = lineErr;
        firstFailed = item.line;
        return STOP;
      }
      return SKIP;
    }
  };
  const sendLine = (line: number, message: OutgoingMessage): void => {
    pending.add(line);
    outstanding++;
    send(message, settle, line);
  };
  /** After each item: false when the run must stop. */
  const after = (): boolean => {
    if (failure) return false;
    if (onProgress && read % 1000 === 0) onProgress(progress());
    return true;
  };
  /** The slow path of `step`: a rate limit to honour, or a full window to wait on. */
  const stepAsync = async (line: number, message: OutgoingMessage): Promise<boolean> => {
    if (bucket) while (!bucket.tryTake()) await new Promise((r) => setTimeout(r, bucket.waitMs()));
    sendLine(line, message);
    if (outstanding >= window) await room(window, keepLingering);
    return after();
  };
  /** One item; false when the run must stop. A promise only when it has to wait. */
  const step = (item: SeedItem): boolean | Promise<boolean> => {
    const message = prepare(item);
    if (message === STOP) return false;
    if (message === SKIP) return after();
    if (bucket || outstanding + 1 >= window) return stepAsync(item.line, message);
    sendLine(item.line, message);
    return after();
  };

  try {
    let sinceYield = 0;
    /** Runs a synchronous stretch of items; false when the run must stop. */
    const run = async (batch: Iterable<SeedItem>): Promise<boolean> => {
      for (const item of batch) {
        let go = step(item);
        if (typeof go !== 'boolean') go = await go;
        if (!go) return false;
        // Confirms and socket writes need the event loop: never run long without it.
        if (++sinceYield >= YIELD_EVERY) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
      return true;
    };
    if (isSync(items)) await run(items);
    else {
      for await (const chunk of items) {
        if (!(await run(isBatch(chunk) ? chunk : [chunk]))) break;
      }
    }
  } catch (err) {
    failure ??= err;
    firstFailed = Math.min(firstFailed, lastLine + 1);
  }
  // Nothing more is coming: open bundles need not wait out their linger.
  await room(1, 0);
  const final = progress();
  onProgress?.(final);
  return { ...final, elapsedMs: Date.now() - started, ...(failure === undefined ? {} : { failure }) };
}

const SKIP = Symbol('skip');
const STOP = Symbol('stop');

function isSync(items: SeedSource): items is Iterable<SeedItem> {
  return !(Symbol.asyncIterator in items) && Symbol.iterator in items;
}

function isBatch(chunk: SeedItem | readonly SeedItem[]): chunk is readonly SeedItem[] {
  return Array.isArray(chunk);
}

/**
 * The lines sent and not yet settled, added in increasing order: a ring of flags from the
 * lowest unsettled line to the latest one, so adding, settling and finding the lowest are
 * O(1) amortized whatever the window.
 */
export class PendingLines {
  private flags = new Uint8Array(1024);
  private head = 0;
  private top = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** `line` must be greater than every line added before. */
  add(line: number): void {
    if (this.count === 0) this.head = line;
    else if (line - this.head >= this.flags.length) this.grow(line - this.head + 1);
    this.flags[line % this.flags.length] = 1;
    this.top = line;
    this.count++;
  }

  delete(line: number): void {
    const i = line % this.flags.length;
    if (this.count === 0 || line < this.head || line > this.top || this.flags[i] === 0) return;
    this.flags[i] = 0;
    this.count--;
    if (this.count === 0) this.head = this.top + 1;
    else if (line === this.head) {
      let h = this.head + 1;
      while (this.flags[h % this.flags.length] === 0) h++;
      this.head = h;
    }
  }

  /** The lowest line not yet settled, or Infinity. */
  lowest(): number {
    return this.count === 0 ? Infinity : this.head;
  }

  private grow(span: number): void {
    let size = this.flags.length * 2;
    while (size < span) size *= 2;
    const next = new Uint8Array(size);
    for (let line = this.head; line <= this.top; line++) next[line % size] = this.flags[line % this.flags.length]!;
    this.flags = next;
  }
}
