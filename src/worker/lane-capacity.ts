/**
 * A lane's capacity and idleness, as work-ahead reads them: how many logical messages it
 * can still take (`concurrency` minus those held), and since when it has had room with no
 * delivery from the broker — an idle lane's queue is empty, so it may run messages early.
 *
 * Why early messages are counted apart: they take capacity like any message, but only real
 * work (a broker delivery) may make a lane busy, or a lane filled by work-ahead would count
 * as busy and end its own working ahead.
 */
export class LaneCapacity {
  /** Logical messages held (decoded, not yet settled), early ones included: what `concurrency` counts. */
  private logical = 0;
  /** Logical messages from broker deliveries (early ones excluded). */
  private deliveredLogical = 0;
  /** When the broker last delivered. */
  private lastDeliveryAt: number;
  /** Since when real work has left capacity free without interruption (Infinity while full). */
  private freeSince: number;

  constructor(
    private readonly concurrency: number,
    now = Date.now(),
  ) {
    this.lastDeliveryAt = now;
    this.freeSince = now;
  }

  /** The broker delivered: the lane's queue was not empty. */
  delivered(now = Date.now()): void {
    this.lastDeliveryAt = now;
  }

  /** `count` logical messages of one delivery are taken up (`early`: by work-ahead). */
  hold(count: number, early: boolean): void {
    this.logical += count;
    if (!early && (this.deliveredLogical += count) >= this.concurrency) this.freeSince = Infinity;
  }

  /** One logical message is settled or given up. */
  release(early: boolean, now = Date.now()): void {
    this.logical--;
    if (!early) this.deliveredLogical--;
    if (this.freeSince === Infinity && this.deliveredLogical < this.concurrency) this.freeSince = now;
  }

  /** Free handler slots. */
  get free(): number {
    return Math.max(0, this.concurrency - this.logical);
  }

  /** How long the lane has had free capacity and no delivery; 0 while full. Whether it consumes is the caller's to check. */
  idleFor(now = Date.now()): number {
    if (this.free === 0) return 0;
    return Math.max(0, now - Math.max(this.lastDeliveryAt, this.freeSince));
  }
}
