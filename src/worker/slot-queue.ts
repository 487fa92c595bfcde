/** What waits for slots: a delivery's logical messages, taken one by one by index. */
export interface SlotWaiter {
  readonly messages: { readonly length: number };
}

/** How waiters rank: higher runs first. */
export interface SlotPriority<W> {
  /** A waiter's priority. */
  readonly of: (waiter: W) => number;
  /** The highest that counts: above it ranks as it (the lane's `maxPriority`, as the broker ranks its queue). */
  readonly max: number;
}

/**
 * Deliveries of one priority, first come first served: whole deliveries with a cursor into
 * the one at the front.
 */
class Fifo<W extends SlotWaiter> {
  private readonly waiting: W[] = [];
  /** Index in `waiting` of the delivery at the front (shifting a long array per message would copy it). */
  private head = 0;
  /** The next message of the front delivery. */
  private next = 0;

  get empty(): boolean {
    return this.head >= this.waiting.length;
  }

  push(waiter: W): void {
    this.waiting.push(waiter);
  }

  /** The front delivery and the index of its next message, which is taken. Only when not empty. */
  take(): [W, number] {
    const waiter = this.waiting[this.head]!;
    const index = this.next++;
    if (this.next >= waiter.messages.length) this.advance();
    return [waiter, index];
  }

  /** The front delivery is fully started: move to the next, compacting the array now and then. */
  private advance(): void {
    this.waiting[this.head] = undefined as unknown as W;
    this.head++;
    this.next = 0;
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
  }
}

/**
 * A lane's handler slots, and the logical messages waiting for one: the highest priority
 * first, and first come first served within a priority — what the lane's priority queue does
 * on the broker, kept in the client for what already left it. That matters where the lane
 * holds more than its slots: a bundled lane's deliveries (up to `LADDER_HELD_MESSAGES`
 * logical messages), and the messages the rung holder hands over as they fall due
 * (`delay.hold`), which would otherwise run before a more urgent delivery that came after them.
 *
 * Why not a semaphore with a promise per waiter: a bundled lane on the ladder prefetches up to
 * `LADDER_HELD_MESSAGES` logical messages in bundles, and when its queue holds a
 * backlog tens of thousands of logical messages wait for a slot at once. A promise, a
 * resolver and a suspended async function each, held until its turn, were garbage the
 * collector had to copy; here a waiting message costs nothing but its place in its delivery.
 */
export class SlotQueue<W extends SlotWaiter> {
  /** One FIFO per priority seen, by priority. */
  private readonly byPriority: Array<Fifo<W> | undefined> = [];
  /** The highest priority that may have waiters (none above it has). */
  private top = 0;
  /** Set while `pump` runs: a slot given back from inside `start` is only counted, the running loop hands it on (no recursion). */
  private pumping = false;

  /**
   * @param free the slots (the lane's concurrency)
   * @param start runs message `index` of `waiter` in a slot it must give back with `release`
   * @param priority how waiters rank @defaultValue every waiter 0: first come first served
   */
  constructor(
    private free: number,
    private readonly start: (waiter: W, index: number) => void,
    private readonly priority?: SlotPriority<W>,
  ) {}

  /** Queues every message of `waiter`; they start, in order, as slots are free (some at once). */
  add(waiter: W): void {
    if (waiter.messages.length === 0) return;
    const priority = this.priority ? clampPriority(this.priority.of(waiter), this.priority.max) : 0;
    (this.byPriority[priority] ??= new Fifo<W>()).push(waiter);
    if (priority > this.top) this.top = priority;
    this.pump();
  }

  /** A slot is free again. */
  release(): void {
    this.free++;
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.free > 0) {
        const fifo = this.highest();
        if (fifo === undefined) break;
        const [waiter, index] = fifo.take();
        this.free--;
        this.start(waiter, index);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The FIFO of the highest priority that has waiters, lowering `top` past empty ones. */
  private highest(): Fifo<W> | undefined {
    for (;;) {
      const fifo = this.byPriority[this.top];
      if (fifo !== undefined && !fifo.empty) return fifo;
      if (this.top === 0) return undefined;
      this.top--;
    }
  }
}

/** A priority as the broker ranks it: a whole number from 0 to `max`; anything else ranks 0. */
function clampPriority(raw: number, max: number): number {
  return Number.isInteger(raw) ? Math.min(Math.max(raw, 0), max) : 0;
}
