/**
 * The reschedule benchmark's contract with its contenders. One file per contender
 * (orbit.ts, raw-amqplib.ts, …) and one line in contenders.ts to register it: a BullMQ
 * contender, say, implements `RescheduleContender` with its own preload (N jobs waiting) and
 * its own loop (each job moved one hour ahead), and reports the same two intervals.
 */
import type { QueueType } from '../../src/config/types';
import { cpuSeconds, nowSeconds } from '../lib/stats';

export interface RescheduleParams {
  /** Messages preloaded, and settled in the timed loop. */
  readonly n: number;
  /** Lane concurrency = consumer prefetch. */
  readonly concurrency: number;
  /** How far ahead each message is rescheduled (one hour). */
  readonly delayMs: number;
  readonly amqpUrl: string;
  /** Kind of orbit's delay-level queues (the hour-ahead replacements wait in one). */
  readonly queueType: QueueType;
  /** Redis for the BullMQ contender. */
  readonly redisUrl?: string;
  readonly progress: (line: string) => void;
}

export interface LoopTiming {
  /** From starting the consumer to the loop's start: connect, topology, consume (orbit: also the first publish's wait for a new quorum rung). */
  readonly startupSeconds: number;
  /** From the first delivery (orbit: the first settlement, scaled to N) to the N-th message settled (replacement confirmed, then acked): the loop. */
  readonly loopSeconds: number;
  /** CPU time (user + system) this process spent during the loop: the client's cost, whatever the broker's. */
  readonly clientCpuSeconds: number;
  /**
   * The loop without its warm-up, as the floor is counted: from the settlement that ends the
   * first `WARMUP_SHARE` of N to the N-th. `settled` settlements in `seconds`, `cpuSeconds`
   * of this process's CPU.
   */
  readonly warm: { readonly settled: number; readonly seconds: number; readonly cpuSeconds: number };
}

/**
 * The share of a run's N settlements left out of its warm rate. A contender's first second
 * compiles its code, opens its channels and fills the prefetch window; the floor leaves out
 * its own first seconds (`FLOOR_PLAN`), so a ratio to the floor compares warm with warm.
 */
export const WARMUP_SHARE = 0.2;

/**
 * Times one run's loop, the same way for every contender: `begin()` at the loop's first
 * event, `settle()` per message settled, which returns the timing at the N-th. With
 * `fromFirstSettlement` (orbit: its first publish to a quorum rung may wait for the rung),
 * the loop starts at the first settlement, and the N − 1 settlements after it are scaled to N.
 */
export class LoopClock {
  private readonly startedAt = nowSeconds();
  private first: number | undefined;
  private cpuAtFirst = 0;
  private warmAt = 0;
  private cpuAtWarm = 0;
  private count = 0;
  /** The settlement that ends the warm-up (at least the first, and before the last when N > 1). */
  private readonly warmAfter: number;

  constructor(
    private readonly n: number,
    private readonly fromFirstSettlement = false,
  ) {
    this.warmAfter = Math.max(1, Math.min(n - 1, Math.floor(n * WARMUP_SHARE)));
  }

  /** Settlements so far. */
  get settled(): number {
    return this.count;
  }

  /** The loop's first event (the first delivery); later calls do nothing. */
  begin(): void {
    if (this.first !== undefined) return;
    this.first = nowSeconds();
    this.cpuAtFirst = cpuSeconds();
  }

  /** One message settled: the loop's timing once it is the N-th, else undefined. */
  settle(): LoopTiming | undefined {
    if (this.fromFirstSettlement) this.begin();
    const count = ++this.count;
    if (count === this.warmAfter) {
      this.warmAt = nowSeconds();
      this.cpuAtWarm = cpuSeconds();
    }
    if (count !== this.n) return undefined;
    const end = nowSeconds();
    const cpuAtEnd = cpuSeconds();
    const first = this.first ?? end;
    const scale = this.fromFirstSettlement && this.n > 1 ? this.n / (this.n - 1) : 1;
    const warm =
      this.n > this.warmAfter
        ? { settled: this.n - this.warmAfter, seconds: end - this.warmAt, cpuSeconds: cpuAtEnd - this.cpuAtWarm }
        : { settled: this.n, seconds: (end - first) * scale, cpuSeconds: (cpuAtEnd - this.cpuAtFirst) * scale };
    return { startupSeconds: first - this.startedAt, loopSeconds: (end - first) * scale, clientCpuSeconds: (cpuAtEnd - this.cpuAtFirst) * scale, warm };
  }
}

export interface PreparedContender {
  /** Starts consuming; resolves once N messages are settled. The loop is timed inside. */
  run(): Promise<LoopTiming>;
  /** After the run: problems found (empty when every message moved one hour ahead exactly once). */
  verify(): Promise<string[]>;
  /** Stops what is still running and deletes everything declared. Always called, also after a failure. */
  cleanup(): Promise<void>;
}

export interface RescheduleContender {
  /** Short, stable: shown in tables and used with `--contenders`. */
  readonly name: string;
  /** One line: what the contender does per message. */
  readonly summary: string;
  /** Untimed: declares, preloads N messages, waits until they are all in place. */
  prepare(params: RescheduleParams): Promise<PreparedContender>;
}

/** Fails a loop that stopped making progress, instead of hanging the benchmark. */
export class StallWatch {
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private lastChange = Date.now();

  constructor(
    private readonly count: () => number,
    private readonly onStall: (err: Error) => void,
    private readonly stallMs = 60_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      const now = this.count();
      if (now !== this.last) {
        this.last = now;
        this.lastChange = Date.now();
      } else if (Date.now() - this.lastChange > this.stallMs) {
        this.stop();
        this.onStall(new Error(`no progress for ${this.stallMs / 1000} s (${now} settled)`));
      }
    }, 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
