/**
 * `count` uniform random delays from [0, spreadMs), handed out in descending order: the
 * order statistics, by the recursion max_k = max_{k+1} · U^(1/k). The set of delays has the
 * same distribution as `count` independent draws; only their order differs. Consecutive lines
 * then share a due time, which is what lets a bundled lane fill its bundles while seeding
 * (with independent draws, a window of lines spread over hours rarely shares a second).
 */
export class DescendingSpread {
  private top = 1;
  private at = 0;

  constructor(
    private readonly count: number,
    private readonly spreadMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The delay of line `line` (1-based, ascending from call to call; skipped lines advance the
   * recursion too, so a resumed run keeps the shape). Past `count` it falls back to an
   * independent draw: a file that grew after it was counted still gets a delay in range.
   */
  delayFor(line: number): number {
    if (line > this.count) return Math.floor(this.random() * this.spreadMs);
    while (this.at < line) {
      this.at++;
      this.top *= this.random() ** (1 / (this.count - this.at + 1));
    }
    return Math.floor(this.top * this.spreadMs);
  }
}
