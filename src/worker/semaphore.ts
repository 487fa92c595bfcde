/** A counting semaphore, first come first served. */
export class Semaphore {
  private readonly waiting: Array<() => void> = [];

  constructor(private free: number) {}

  /** Takes a permit if one is free, without a promise (the hot path: usually one is). */
  tryAcquire(): boolean {
    if (this.free <= 0 || this.waiting.length > 0) return false;
    this.free--;
    return true;
  }

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}
