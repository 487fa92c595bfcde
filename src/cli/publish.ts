import { Command } from 'commander';
import { errorMessage, InvalidMessageError } from '../errors';
import { Scheduler } from '../publish/scheduler';
import { seed } from '../seed/seeder';
import { jsonLineBatches, openInput } from '../seed/sources';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface PublishFlags extends ConfigFlags {
  lane?: string;
  delay?: string;
  at?: string;
  priority?: string;
  id?: string;
  body?: string;
  file?: string;
  replace?: boolean;
  window: string;
}

/** How many publishes may await their confirms at once when reading lines. */
const DEFAULT_WINDOW = 500;

export function publishCommand(): Command {
  return withConfigOptions(
    new Command('publish')
      .description('publish one message (--body) or JSON lines from --file or stdin')
      .option('--lane <lane>', 'destination lane (default for lines that name none)')
      .option('--delay <duration>', 'delay: ms or 90s, 10m, 2h, 1d')
      .option('--at <time>', 'due time: ISO-8601 or epoch ms (a past time is due now)')
      .option('--priority <n>', 'priority, 0 … the lane maxPriority')
      .option('--id <id>', 'message id (default: a new UUID)')
      .option('--body <json>', 'the body, as JSON text')
      .option('--replace', 'with --id and --body: supersede every copy of the id published before (they are dropped when due)')
      .option('--file <file>', 'JSON lines to publish ("-" for stdin)')
      .option('--window <n>', 'unconfirmed publishes in flight', String(DEFAULT_WINDOW)),
  ).action(
    action(async (flags: PublishFlags) => {
      const config = configFromFlags(flags);
      const scheduler = new Scheduler({ config, role: 'cli' });
      try {
        if (flags.body !== undefined) await publishOne(scheduler, flags);
        else await publishLines(scheduler, flags);
      } finally {
        await scheduler.close();
      }
    }),
  );
}

async function publishOne(scheduler: Scheduler, flags: PublishFlags): Promise<void> {
  if (flags.file) throw new InvalidMessageError('give either --body or --file, not both');
  if (flags.replace && flags.id === undefined) throw new InvalidMessageError('--replace needs --id: the id of the message it replaces', { code: 'BAD_ID' });
  let body: unknown;
  try {
    body = JSON.parse(flags.body!);
  } catch (err) {
    throw new InvalidMessageError(`--body is not valid JSON: ${errorMessage(err)}`, { code: 'BAD_BODY' });
  }
  const published = await scheduler.publish(requireLane(flags.lane), body, {
    delay: flags.delay,
    at: flags.at,
    priority: parsePriority(flags.priority),
    id: flags.id,
    replace: flags.replace === true,
  });
  process.stdout.write(`${JSON.stringify({ id: published.id, lane: published.lane, dueAt: published.dueAt.toISOString() })}\n`);
}

/**
 * Lines are validated and published in order with a bounded window of unconfirmed
 * publishes. On the first bad line or failed publish it stops, waits for what is in
 * flight, and says exactly how many lines were confirmed, so a rerun can skip them.
 */
async function publishLines(scheduler: Scheduler, flags: PublishFlags): Promise<void> {
  if (flags.replace) throw new InvalidMessageError('--replace publishes one message (--id and --body); for many, `orbit cancel --file` the ids first, then publish them', { code: 'BAD_ID' });
  const window = Math.max(1, Number.parseInt(flags.window, 10) || DEFAULT_WINDOW);
  const input = openInput(flags.file);
  if (input === process.stdin && process.stdin.isTTY) {
    throw new InvalidMessageError('nothing to publish: give --body, --file, or pipe JSON lines on stdin');
  }
  const defaults = { delay: flags.delay, at: flags.at, priority: parsePriority(flags.priority) };
  // The seeder's pipeline, strict: the first bad line stops the run with its number.
  const result = await seed(jsonLineBatches(input), scheduler, { lane: flags.lane, strict: true, window, defaults }, () => undefined);
  const upTo = result.failure === undefined ? '' : `; every line before line ${result.doneThrough + 1} is confirmed`;
  process.stderr.write(`orbit: published ${result.confirmed} message(s), each confirmed by the broker${upTo}\n`);
  if (result.failure !== undefined) throw result.failure;
}

function requireLane(lane: string | undefined): string {
  if (!lane) throw new InvalidMessageError('--lane is required', { code: 'UNKNOWN_LANE' });
  return lane;
}

function parsePriority(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n)) throw new InvalidMessageError(`--priority must be an integer (got "${text}")`, { code: 'BAD_PRIORITY' });
  return n;
}
