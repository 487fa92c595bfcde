import { Command, Option } from 'commander';
import { BrokerSession } from '../publish/session';
import type { ResolvedConfig } from '../config/types';
import { formatDuration } from '../config/durations';
import { DeadLetterQueue, type DeadQueueName } from '../dlq/dead-letter-queue';
import type { DeadMessageView } from '../dlq/describe';
import { InvalidMessageError, OrbitError } from '../errors';
import { createLogger } from '../logging/logger';
import { names } from '../naming/names';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface DlqFlags extends ConfigFlags {
  queue: DeadQueueName;
  limit?: string;
  json?: boolean;
  lane?: string;
  id?: string;
  yes?: boolean;
}

const queueOption = () => new Option('--queue <queue>', 'which queue').choices(['dead', 'unroutable']).default('dead');

export function dlqCommand(): Command {
  const dlq = new Command('dlq').description('inspect, replay and purge dead-lettered and unroutable messages');
  dlq.addCommand(
    withConfigOptions(
      new Command('list')
        .description('show messages without removing or reordering them')
        .addOption(queueOption())
        .option('--limit <n>', 'at most this many', '20')
        .option('--json', 'one JSON array'),
    ).action(
      action(async (flags: DlqFlags) => {
        await withDlq(flags, async (q) => {
          const total = await q.count(flags.queue);
          const shown = await q.list(flags.queue, count(flags.limit, '--limit') ?? 20);
          if (flags.json) process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
          else process.stdout.write(table(shown, total, q.queueName(flags.queue)));
        });
      }),
    ),
  );
  dlq.addCommand(
    withConfigOptions(
      new Command('replay')
        .description('send messages back to their lanes (due now, attempts reset), each confirmed before removal')
        .addOption(queueOption())
        .option('--limit <n>', 'replay at most this many')
        .option('--lane <lane>', 'only messages of this lane')
        .option('--id <id>', 'only the message with this id'),
    ).action(
      action(async (flags: DlqFlags) => {
        await withDlq(flags, async (q) => {
          const r = await q.replay(flags.queue, { limit: count(flags.limit, '--limit'), lane: flags.lane, id: flags.id });
          const queue = q.queueName(flags.queue);
          // Asked for one message by id and it is not there: a typo must not read as success.
          if (flags.id !== undefined && r.replayed === 0 && r.unknownLanes.length === 0) {
            throw new OrbitError('MESSAGE_NOT_FOUND', `no message with id "${flags.id}" in ${queue} (${r.left} message(s) there); nothing replayed`);
          }
          const unknown = r.unknownLanes.length ? `; left in place for lanes this config does not have: ${r.unknownLanes.join(', ')}` : '';
          const bad = r.badBundles ? `; ${r.badBundles} bundle(s) that do not decode left in place (see \`orbit dlq list\`)` : '';
          process.stdout.write(`replayed ${r.replayed} message(s) from ${queue}; ${r.left} left there${unknown}${bad}\n`);
        });
      }),
    ),
  );
  dlq.addCommand(
    withConfigOptions(
      new Command('purge')
        .description('delete every message in the queue (needs --yes)')
        .addOption(queueOption())
        .option('--yes', 'really delete'),
    ).action(
      action(async (flags: DlqFlags) => {
        await withDlq(flags, async (q) => {
          if (!flags.yes) {
            const n = await q.count(flags.queue);
            throw new InvalidMessageError(`refusing to purge ${n} message(s) from ${q.queueName(flags.queue)} without --yes`, { code: 'CONFIRMATION_REQUIRED' });
          }
          const removed = await q.purge(flags.queue);
          process.stdout.write(`purged ${removed} message(s) from ${q.queueName(flags.queue)}\n`);
        });
      }),
    ),
  );
  return dlq;
}

/**
 * Every dlq command works on a namespace that exists and declares nothing: list only looks,
 * replay publishes to lanes already there and purge empties a queue already there. The queue
 * looked into is compared with orbit's arguments, so one unsafe to look into is refused.
 */
async function withDlq(flags: DlqFlags, fn: (q: DeadLetterQueue) => Promise<void>): Promise<void> {
  const config: ResolvedConfig = configFromFlags(flags);
  const n = names(config.namespace);
  const session = await BrokerSession.open(config, 'cli', createLogger(config.log.level, 2), {
    topology: 'passive',
    inspect: [flags.queue === 'unroutable' ? n.unroutable : n.dead],
  });
  try {
    await fn(new DeadLetterQueue(session, config.lanes));
  } finally {
    await session.close();
  }
}

function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidMessageError(`${flag} must be a whole number ≥ 0 (got "${text}")`);
  return n;
}

function table(rows: readonly DeadMessageView[], total: number, queue: string): string {
  const header = ['ID', 'LANE', 'ERROR', 'ATTEMPTS', 'AGE', 'BODY'];
  const cells = rows.map((r) => [
    r.id ?? '-',
    r.lane ?? '-',
    r.code ? `${r.code}: ${r.error ?? ''}`.slice(0, 60) : '-',
    r.attempts === null ? '-' : String(r.attempts),
    r.ageMs === null ? '-' : formatDuration(Math.round(r.ageMs / 1000) * 1000),
    r.preview,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  return [`${queue}: ${total} message(s), showing ${rows.length}`, line(header), ...cells.map(line), ''].join('\n');
}
