import { SingleBar } from 'cli-progress';
import type { SeedProgress } from './seeder';

export interface ProgressReporter {
  update(p: SeedProgress): void;
  stop(): void;
}

/**
 * A progress bar with rate and ETA on a terminal (cli-progress); plain periodic lines
 * otherwise, so logs of a systemd or CI run stay readable. `total` is in the unit the bar
 * counts: bytes of a file, or messages when generating; unknown for a pipe.
 */
export function progressReporter(stream: NodeJS.WriteStream, total: number | undefined, unit: 'bytes' | 'messages'): ProgressReporter {
  const started = Date.now();
  const value = (p: SeedProgress) => (unit === 'bytes' ? p.bytes : p.read);
  if (stream.isTTY && total) {
    const bar = new SingleBar(
      {
        stream,
        format: ' seeding [{bar}] {percentage}% | {confirmed} confirmed | {rate} msg/s | ETA {eta_formatted}',
        hideCursor: true,
        etaBuffer: 50,
      },
    );
    bar.start(total, 0, { confirmed: 0, rate: 0 });
    return {
      update: (p) => bar.update(Math.min(total, value(p)), { confirmed: p.confirmed, rate: rate(p.confirmed, started) }),
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update: (p) => {
      const now = Date.now();
      if (now - last < 2000) return;
      last = now;
      const done = total ? ` (${Math.floor((value(p) / total) * 100)}%)` : '';
      stream.write(
        `seeding: ${p.confirmed} confirmed, ${p.read} lines read${done}, ${rate(p.confirmed, started)} msg/s, ` +
          `every line through ${p.doneThrough} done\n`,
      );
    },
    stop: () => undefined,
  };
}

function rate(count: number, started: number): number {
  const seconds = (Date.now() - started) / 1000;
  return seconds > 0 ? Math.round(count / seconds) : 0;
}
