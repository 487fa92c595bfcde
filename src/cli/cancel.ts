import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { InvalidMessageError } from '../errors';
import { Scheduler } from '../publish/scheduler';
import { openInput } from '../seed/sources';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface CancelFlags extends ConfigFlags {
  id?: string[];
  file?: string;
}

export function cancelCommand(): Command {
  return withConfigOptions(
    new Command('cancel')
      .description('cancel messages by id: every copy published before now is dropped when it comes due, by every daemon')
      .option('--id <id...>', 'the id(s) to cancel')
      .option('--file <file>', 'ids to cancel, one per line ("-" for stdin)'),
  ).action(
    action(async (flags: CancelFlags) => {
      if (flags.id !== undefined && flags.file !== undefined) throw new InvalidMessageError('give either --id or --file, not both', { code: 'BAD_ID' });
      const ids = flags.id !== undefined ? flags.id : await readIds(flags.file);
      if (ids.length === 0) throw new InvalidMessageError('nothing to cancel: give --id, --file, or ids on stdin', { code: 'BAD_ID' });
      const scheduler = new Scheduler({ config: configFromFlags(flags), role: 'cli' });
      try {
        const result = await scheduler.cancel(ids);
        process.stdout.write(`${JSON.stringify({ cancelled: result.cancelled, before: result.before.toISOString() })}\n`);
      } finally {
        await scheduler.close();
      }
    }),
  );
}

/** One id per line; blank lines are skipped, surrounding spaces trimmed. */
async function readIds(file: string | undefined): Promise<string[]> {
  const input = openInput(file);
  if (input === process.stdin && process.stdin.isTTY) return [];
  const ids: string[] = [];
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    const id = line.trim();
    if (id !== '') ids.push(id);
  }
  return ids;
}
