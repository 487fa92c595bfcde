import { TokenBucket } from './token-bucket';

/**
 * A lane's rate limit: handler starts pass one at a time, first come first served, at most
 * `max` per `perMs` with no burst beyond `max`. A waiting message stays unacked in the
 * prefetch window, so nothing is lost and the broker's priority order still decides what
 * arrives next.
 */
export class RateLimiter {
  private readonly bucket: TokenBucket;
  private readonly waiting: Array<() => void> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(max: number, perMs: number, now: () => number = Date.now) {
    this.bucket = new TokenBucket((max / perMs) * 1000, max, now);
  }

  /** Resolves when this caller may start; with the ms it waited. */
  acquire(): Promise<number> {
    if (this.waiting.length === 0 && this.bucket.tryTake()) return Promise.resolve(0);
    const since = Date.now();
    return new Promise<number>((resolve) => {
      this.waiting.push(() => resolve(Date.now() - since));
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.timer || this.waiting.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      while (this.waiting.length > 0 && this.bucket.tryTake()) this.waiting.shift()!();
      this.schedule();
    }, Math.max(1, this.bucket.waitMs()));
  }
}
