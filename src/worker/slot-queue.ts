/** What waits for slots: a delivery's logical messages, taken one by one by index. */
export interface SlotWaiter {
  readonly messages: { readonly length: number };
}

/**
 * A lane's handler slots, and the logical messages waiting for one, first come first
 * served: whole deliveries with a cursor into the one at the front.
 *
 * Why not a semaphore with a promise per waiter: a bundled lane on the ladder prefetches up to
 * `LADDER_HELD_MESSAGES` logical messages in bundles, and when its queue holds a
 * backlog tens of thousands of logical messages wait for a slot at once. A promise, a
 * resolver and a suspended async function each, held until its turn, were garbage the
 * collector had to copy; here a waiting message costs nothing but its place in its delivery.
 */
export class SlotQueue<W extends SlotWaiter> {
  private readonly waiting: W[] = [];
  /** Index in `waiting` of the delivery at the front (shifting a long array per message would copy it). */
  private head = 0;
  /** The next message of the front delivery. */
  private next = 0;
  /** Set while `pump` runs: a slot given back from inside `start` is only counted, the running loop hands it on (no recursion). */
  private pumping = false;

  /**
   * @param free the slots (the lane's concurrency)
   * @param start runs message `index` of `waiter` in a slot it must give back with `release`
   */
  constructor(
    private free: number,
    private readonly start: (waiter: W, index: number) => void,
  ) {}

  /** Queues every message of `waiter`; they start, in order, as slots are free (some at once). */
  add(waiter: W): void {
    if (waiter.messages.length === 0) return;
    this.waiting.push(waiter);
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
      while (this.free > 0 && this.head < this.waiting.length) {
        const waiter = this.waiting[this.head]!;
        const index = this.next++;
        if (this.next >= waiter.messages.length) this.advance();
        this.free--;
        this.start(waiter, index);
      }
    } finally {
      this.pumping = false;
    }
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
