/**
 * The reschedule benchmark's contract with its contenders. One file per contender
 * (orbit.ts, raw-amqplib.ts, …) and one line in contenders.ts to register it: a BullMQ
 * contender, say, implements `RescheduleContender` with its own preload (N jobs waiting) and
 * its own loop (each job moved one hour ahead), and reports the same two intervals.
 */
import type { QueueType } from '../../src/config/types';

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
}

/** CPU seconds (user + system) this process has used so far. */
export function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
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
