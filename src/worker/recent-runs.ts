import type { Message } from './handler-types';

/** How many settled runs a daemon remembers, to drop copies of them: ≈ 170 B of heap each, ≈ 17 MB when full (Node 20). */
export const RECENT_RUNS_MAX = 100_000;
/** How long a settled run is remembered: a broker's restart and recovery, with room. */
export const RECENT_RUNS_WINDOW_MS = 120_000;

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
 * Exact: a run is named by its lane, id, generation, runs, attempt and due time, which no
 * other delivery shares — a reschedule counts `runs` up, a retry `attempt`, a publish of the
 * same id has a new generation, and what `orbit dlq replay` and `orbit lanes move` send back
 * (attempt 0, runs and generation kept) is due at the time it was sent. A message without a
 * generation (0: published before orbit wrote one) is never taken for a copy.
 *
 * Bounded: the last `max` runs of the last `windowMs`, the oldest forgotten first; a copy that
 * comes later, or to another daemon, runs. A ring of keys, oldest at `tail`, evicts in O(1)
 * (a Map's own order would do, but finding its first entry again after many deletes walks
 * over their holes: 60 µs per add at 200,000).
 */
export class RecentRuns {
  /** Run key → when it last settled (epoch ms). */
  private readonly at = new Map<string, number>();
  private readonly keys: Array<string | undefined>;
  private readonly times: Float64Array;
  /** The oldest entry of the ring, and how many it holds. */
  private tail = 0;
  private count = 0;

  constructor(
    private readonly max = RECENT_RUNS_MAX,
    private readonly windowMs = RECENT_RUNS_WINDOW_MS,
  ) {
    this.keys = new Array<string | undefined>(max);
    this.times = new Float64Array(max);
  }

  /** Remembers that the run `key` settled at `now`. */
  add(key: string, now = Date.now()): void {
    while (this.count > 0 && (this.count >= this.max || now - this.times[this.tail]! > this.windowMs)) this.evictOldest();
    const slot = (this.tail + this.count) % this.max;
    this.keys[slot] = key;
    this.times[slot] = now;
    this.count++;
    this.at.set(key, now);
  }

  /** Whether the run `key` settled within the window. */
  has(key: string, now = Date.now()): boolean {
    const t = this.at.get(key);
    return t !== undefined && now - t <= this.windowMs;
  }

  /** Runs remembered (some may be past the window until the next `add`). */
  get size(): number {
    return this.at.size;
  }

  private evictOldest(): void {
    const key = this.keys[this.tail]!;
    // The same run settled again later (two copies ran at once) keeps its later entry.
    if (this.at.get(key) === this.times[this.tail]) this.at.delete(key);
    this.keys[this.tail] = undefined;
    this.tail = (this.tail + 1) % this.max;
    this.count--;
  }
}

/**
 * The name of one run of a message in `lane` (`RecentRuns`); undefined when it cannot be
 * named exactly (no generation or no id), and then it is never taken for a copy.
 */
export function runKey(
  lane: string,
  incoming: { readonly generation: number; readonly dueAtMs: number; readonly message: Pick<Message, 'id' | 'runs' | 'attempt'> },
): string | undefined {
  const { message, generation } = incoming;
  if (!generation || !message.id) return undefined;
  // The id last: a lane name (`[A-Za-z0-9_-]`) and the numbers hold no separator, so an id
  // that does cannot make two runs one. Joined, not a template: V8 keeps a template's parts
  // as a rope, 300 B a key instead of 110.
  return [lane, generation, message.runs, message.attempt, incoming.dueAtMs, message.id].join('\u0000');
}
