import { statSync } from 'node:fs';
import { Command } from 'commander';
import { parseDuration } from '../config/durations';
import { errorMessage, InvalidMessageError } from '../errors';
import { createLogger } from '../logging/logger';
import { Scheduler } from '../publish/scheduler';
import { progressReporter } from '../seed/progress';
import { seed, type SeedSource } from '../seed/seeder';
import { DescendingSpread } from '../seed/descending-spread';
import { defaultSeedWindow } from '../seed/default-window';
import { countLines, generated, jsonLineBatches, openInput } from '../seed/sources';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface SeedFlags extends ConfigFlags {
  lane?: string;
  file?: string;
  spread?: string;
  rate?: string;
  skip: string;
  strict?: boolean;
  window?: string;
  generate?: string;
  bytes: string;
  progress: boolean;
}

export function seedCommand(): Command {
  return withConfigOptions(
    new Command('seed')
      .description('bulk-load JSON lines (--file or stdin) or generated messages, pipelined and resumable')
      .option('--lane <lane>', 'lane for lines that name none')
      .option('--file <file>', 'JSON lines to load ("-" or absent: stdin)')
      .option('--spread <duration>', 'give lines without delay/at a random delay in [0, D) (from a file: handed out in descending order, so bundles fill)')
      .option('--rate <n>', 'publish at most n messages per second')
      .option('--skip <n>', 'skip the first n lines (resume after a failure)', '0')
      .option('--strict', 'stop at the first malformed line instead of skipping it')
      .option('--window <n>', 'unconfirmed messages in flight, those waiting in open bundles included (default: 2000; on a bundled lane 50 bundles, or 100000 with delay.tolerance > 0)')
      .option('--generate <n>', 'publish n synthetic messages instead of reading lines')
      .option('--bytes <n>', 'approximate body size of generated messages', '80')
      .option('--no-progress', 'no progress output'),
  ).action(
    action(async (flags: SeedFlags) => {
      const config = configFromFlags(flags);
      const skip = wholeNumber(flags.skip, '--skip');
      const generate = flags.generate === undefined ? undefined : wholeNumber(flags.generate, '--generate');
      if (generate !== undefined && flags.file) throw new InvalidMessageError('give either --generate or --file, not both');
      if (generate !== undefined && !flags.lane) throw new InvalidMessageError('--generate needs --lane');
      const spreadMs = flags.spread === undefined ? undefined : parseDuration(flags.spread, '--spread');
      const rate = flags.rate === undefined ? undefined : wholeNumber(flags.rate, '--rate');

      let items: SeedSource;
      let spreadFor: ((line: number) => number) | undefined;
      let total: number | undefined;
      let unit: 'bytes' | 'messages';
      if (generate !== undefined) {
        items = generated(generate, wholeNumber(flags.bytes, '--bytes'), skip, spreadMs);
        total = Math.max(0, generate - skip);
        unit = 'messages';
      } else {
        const input = openInput(flags.file);
        if (input === process.stdin && process.stdin.isTTY) throw new InvalidMessageError('nothing to seed: give --file, --generate, or pipe JSON lines on stdin');
        items = jsonLineBatches(input, skip);
        const file = flags.file && flags.file !== '-' ? statSync(flags.file) : undefined;
        total = file?.size;
        unit = 'bytes';
        // A regular file can be counted first, so the spread delays go out in descending
        // order and bundles fill; stdin cannot be read twice, so its lines draw independently.
        if (spreadMs !== undefined && file?.isFile()) {
          const spread = new DescendingSpread(await countLines(flags.file!), spreadMs);
          spreadFor = (line) => spread.delayFor(line);
        }
      }

      // Bundles fill from the window: keep several bundles' worth in flight. When the window
      // is full the seeder sends the oldest open bundles rather than wait out their linger.
      // On the ladder (tolerance > 0) a bundle's key is its rung, and delays spread over a
      // day use ~700 of them: 50 bundles' worth would give each rung ~7 messages per bundle
      // (docs/BENCHMARKS.md, "fill"), so the window is the most we allow.
      const largestBundle = Math.max(1, ...config.lanes.map((l) => l.bundle.max));
      const window = flags.window !== undefined ? wholeNumber(flags.window, '--window') : defaultSeedWindow(largestBundle, config.delay.tolerance);
      // A bar redrawn in place on a terminal is torn apart by info lines ("amqp connected")
      // written to the same stderr: while it is drawn, only warnings and worse are logged
      // (debug and trace stay, being asked for).
      const drawsBar = flags.progress && process.stderr.isTTY === true && Boolean(total);
      const level = drawsBar && config.log.level === 'info' ? 'warn' : config.log.level;
      const scheduler = new Scheduler({ config, role: 'cli', logger: createLogger(level, 2) });
      // Ctrl-C / SIGTERM: stop reading, let in-flight publishes confirm, say where to resume.
      const interrupt = new AbortController();
      const onSignal = () => interrupt.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const progress = flags.progress ? progressReporter(process.stderr, total, unit) : undefined;
      try {
        await scheduler.connect();
        // A spread names the longest delay up front: declare its rungs together, so new quorum
        // rungs settle once instead of each holding the window full in turn.
        if (spreadMs !== undefined && spreadMs > 0) await scheduler.prepareRungs(spreadMs, flags.lane);
        const result = await seed(
          items,
          scheduler,
          { lane: flags.lane, spreadMs, spreadFor, rate, strict: flags.strict, window, signal: interrupt.signal },
          (_line, err) => process.stderr.write(`orbit: ${err.message} — ${flags.strict ? 'stopping (--strict)' : 'skipped'}\n`),
          progress ? (p) => progress.update(p) : undefined,
        );
        progress?.stop();
        const seconds = result.elapsedMs / 1000;
        const summary = {
          confirmed: result.confirmed,
          malformed: result.malformed,
          linesRead: result.read,
          doneThrough: result.doneThrough,
          seconds: Number(seconds.toFixed(2)),
          perSecond: seconds > 0 ? Math.round(result.confirmed / seconds) : result.confirmed,
        };
        process.stdout.write(`${JSON.stringify(summary)}\n`);
        if (result.failure !== undefined) {
          process.stderr.write(
            `orbit: seeding stopped: ${errorMessage(result.failure)}\n` +
              `orbit: every line up to ${result.doneThrough} is confirmed (or was malformed); resume with --skip ${result.doneThrough}\n`,
          );
          throw result.failure;
        }
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        progress?.stop();
        await scheduler.close();
      }
    }),
  );
}

function wholeNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidMessageError(`${flag} must be a whole number ≥ 0 (got "${text}")`);
  return n;
}
