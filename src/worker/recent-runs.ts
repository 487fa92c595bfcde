import type { Message } from './handler-types';

/** How many settled runs a daemon remembers, to drop copies of them: ≈ 170 B of heap each, ≈ 17 MB when full (Node 20). */
export const RECENT_RUNS_MAX = 100_000;
/** How long a settled run is remembered: a broker's restart and recovery, with room. */
export const RECENT_RUNS_WINDOW_MS = 120_000;

/** What a delivery is of a run settled lately (`RecentRuns.copyOf`). */
export type CopyKind =
  /** The very message again (the same due time): its ack was lost, or a dead letter was re-sent. */
  | 'exact'
  /**
   * A fork: the same run of the same message (lane, id, generation, runs, attempt), due at
   * another time, after that run was rescheduled or done. Two live copies of one message.
   */
  | 'fork';

/**
 * The runs this daemon settled lately: their replacement was confirmed, or none was needed.
 * A delivery of one of them again is a copy, and runs no more (`LaneWorker`): it is acked
 * with nothing in its place, as the lost ack would have done.
 *
 * Why: a broker crash can bring back messages whose acks it had not written yet. RabbitMQ's
 * classic queues did so for every message acked in the seconds before a kill -9 (4.0.5: all
 * 600 acked 1 s before the kill came back while the queue held one unacked message; none 13 s
 * after), and a quorum rung's at-least-once dead-letter worker re-sends what it saw no confirm
 * for. Each such copy ran again and rescheduled itself next to the replacement already
 * confirmed: two copies of the message, each rescheduling for ever (docs/RELIABILITY.md).
 *
 * Forks too: a run in flight when its channel closed may have had its replacement taken by the
 * broker unconfirmed; its original then runs again and publishes a second replacement, due a
 * little later. The two have the same run key and different due times. The first to run here
 * is recorded; the second is then a fork, and dropped, so the message goes on as one copy.
 *
 * Exact: a run is named by its lane, id, generation, runs and attempt (`runKey`), and the due
 * time is kept beside it. A reschedule counts `runs` up, a retry `attempt`, and a publish of
 * the same id has a new generation. What `orbit dlq replay` and `orbit lanes move` send back
 * (attempt 0, runs and generation kept, due when sent) shares a key only with an attempt that
 * was *retried* (a message that died at those runs was never rescheduled at them), so a
 * different due time counts as a fork only after a run that was rescheduled or done. A message
 * without a generation (0: published before orbit wrote one) is never taken for a copy.
 *
 * Bounded: the last `max` runs of the last `windowMs`, the oldest forgotten first; a copy that
 * comes later, or to another daemon, runs. A ring of keys, oldest at `tail`, evicts in O(1)
 * (a Map's own order would do, but finding its first entry again after many deletes walks
 * over their holes: 60 µs per add at 200,000).
 */
export class RecentRuns {
  /** Run key → its latest slot in the ring. */
  private readonly slotOf = new Map<string, number>();
  private readonly keys: Array<string | undefined>;
  /** Per slot: when the run settled, its due time (epoch ms), and 1 when it was rescheduled or done. */
  private readonly times: Float64Array;
  private readonly dues: Float64Array;
  private readonly movedOn: Uint8Array;
  /** The oldest entry of the ring, and how many it holds. */
  private tail = 0;
  private count = 0;

  constructor(
    private readonly max = RECENT_RUNS_MAX,
    private readonly windowMs = RECENT_RUNS_WINDOW_MS,
  ) {
    this.keys = new Array<string | undefined>(max);
    this.times = new Float64Array(max);
    this.dues = new Float64Array(max);
    this.movedOn = new Uint8Array(max);
  }

  /**
   * Remembers that the run `key`, due at `dueAtMs`, settled at `now`; `movedOn`: it was
   * rescheduled or done (not retried), so a copy due at another time is a fork.
   */
  add(key: string, dueAtMs: number, movedOn: boolean, now = Date.now()): void {
    while (this.count > 0 && (this.count >= this.max || now - this.times[this.tail]! > this.windowMs)) this.evictOldest();
    const slot = (this.tail + this.count) % this.max;
    this.keys[slot] = key;
    this.times[slot] = now;
    this.dues[slot] = dueAtMs;
    this.movedOn[slot] = movedOn ? 1 : 0;
    this.count++;
    this.slotOf.set(key, slot);
  }

  /** What a delivery of run `key` due at `dueAtMs` is of a run settled within the window; undefined: not a copy. */
  copyOf(key: string, dueAtMs: number, now = Date.now()): CopyKind | undefined {
    const slot = this.slotOf.get(key);
    if (slot === undefined || now - this.times[slot]! > this.windowMs) return undefined;
    if (this.dues[slot] === dueAtMs) return 'exact';
    return this.movedOn[slot] === 1 ? 'fork' : undefined;
  }

  /** Runs remembered (some may be past the window until the next `add`). */
  get size(): number {
    return this.slotOf.size;
  }

  private evictOldest(): void {
    const key = this.keys[this.tail]!;
    // The same run settled again later (a replay, or two copies at once) keeps its later entry.
    if (this.slotOf.get(key) === this.tail) this.slotOf.delete(key);
    this.keys[this.tail] = undefined;
    this.tail = (this.tail + 1) % this.max;
    this.count--;
  }
}

/**
 * The name of one run of a message in `lane` (`RecentRuns`): lane, generation, runs, attempt
 * and id, its due time kept beside it. Undefined when it cannot be named exactly (no
 * generation or no id), and then it is never taken for a copy.
 */
export function runKey(lane: string, incoming: { readonly generation: number; readonly message: Pick<Message, 'id' | 'runs' | 'attempt'> }): string | undefined {
  const { message, generation } = incoming;
  if (!generation || !message.id) return undefined;
  // The id last: a lane name (`[A-Za-z0-9_-]`) and the numbers hold no separator, so an id
  // that does cannot make two runs one. Joined, not a template: V8 keeps a template's parts
  // as a rope, 300 B a key instead of 110.
  return [lane, generation, message.runs, message.attempt, message.id].join('\u0000');
}
