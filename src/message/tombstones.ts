/**
 * What a daemon knows of cancels: for each cancelled id, the generation before which its
 * copies are dropped (`message/generation.ts`). Pure; fed by the tombstone stream
 * (`amqp/tombstone-follower.ts`) and asked by the lanes before and after each run.
 *
 * A tombstone is kept for `retentionMs` after its cancel, then retired: by then every copy
 * published before it has come due (the longest delay users give is what the retention must
 * cover; README, "Cancel and replace"), so the set does not grow under a steady churn of
 * cancels. One number per id in a Map: ~100 B per tombstone (docs/BENCHMARKS.md).
 */
export class Tombstones {
  /** id → the cancel's generation (epoch ms): copies older than it are dropped. In arrival order. */
  private readonly before = new Map<string, number>();

  constructor(private readonly retentionMs: number) {}

  /** Tombstones held. */
  get size(): number {
    return this.before.size;
  }

  /**
   * Records a cancel of `id` for the copies older than `before`. A later cancel of the same
   * id moves the line forward (never back: tombstones may arrive out of order across publishers).
   */
  record(id: string, before: number, now = Date.now()): void {
    if (!(before > 0) || !Number.isFinite(before)) return;
    const known = this.before.get(id);
    if (known !== undefined && known >= before) return;
    // Re-inserted at the end: the map stays roughly in cancel order, which `retire` relies on.
    this.before.delete(id);
    this.before.set(id, before);
    if (this.before.size % 1024 === 0) this.retire(now);
  }

  /** True when the copy of `id` of this generation was cancelled. */
  cancels(id: string, generation: number): boolean {
    const before = this.before.get(id);
    return before !== undefined && generation < before;
  }

  /**
   * Forgets tombstones older than the retention. Walks from the oldest and stops at the first
   * one still kept: cheap to call often. (One arriving late with an old time stays until the
   * ones before it go: kept longer, never shorter.)
   */
  retire(now = Date.now()): number {
    const horizon = now - this.retentionMs;
    let retired = 0;
    for (const [id, before] of this.before) {
      if (before >= horizon) break;
      this.before.delete(id);
      retired++;
    }
    return retired;
  }
}
