import { Command } from 'commander';
import { BrokerSession } from '../publish/session';
import { InvalidMessageError } from '../errors';
import { moveStrandedLane } from '../lanes/move-stranded';
import { createLogger } from '../logging/logger';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface MoveFlags extends ConfigFlags {
  from: string;
  to: string;
  limit?: string;
}

/**
 * `orbit lanes move`: the way out for the messages of a lane removed from the config (a
 * "stranded" lane: `orbit start` warns of it, `orbit stats` lists it, `orbit_stranded_messages`
 * counts it).
 */
export function lanesCommand(): Command {
  const lanes = new Command('lanes').description('lanes removed from the config: move the messages left in their queues');
  lanes.addCommand(
    withConfigOptions(
      new Command('move')
        .description("move the messages of a removed lane's queue(s) into a lane of the config (due now, attempts reset), each confirmed before removal")
        .requiredOption('--from <lane>', 'the removed lane (as `orbit stats` lists it under STRANDED LANES)')
        .requiredOption('--to <lane>', 'a lane of the config')
        .option('--limit <n>', 'move at most this many messages'),
    ).action(
      action(async (flags: MoveFlags) => {
        const limit = count(flags.limit, '--limit');
        const config = configFromFlags(flags);
        // Moving needs the target lane's queue and binding (declared if missing), but must not
        // start a namespace that does not exist (a mistyped --namespace).
        const session = await BrokerSession.open(config, 'cli', createLogger(config.log.level, 2), { topology: 'existing' });
        try {
          const moved = await moveStrandedLane(session, config, {
            from: flags.from,
            to: flags.to,
            limit,
            onQueue: (queue, messages) => process.stdout.write(`moving ${messages} message(s) from ${queue} to lane ${flags.to} …\n`),
          });
          if (moved.length === 0) process.stdout.write(`lane ${flags.from} has no queue left: nothing to move\n`);
          for (const m of moved) {
            const bundles = m.logical !== m.moved ? ` (${m.logical} logical)` : '';
            const bad = m.badBodies ? `, ${m.badBodies} undecodable bundle(s) dead-lettered` : '';
            const next = m.left === 0 ? `; once no more arrive, delete ${m.queue} to retire the lane` : '';
            process.stdout.write(`moved ${m.moved} message(s)${bundles} from ${m.queue} to lane ${flags.to}${bad}; ${m.left} left${next}\n`);
          }
        } finally {
          await session.close();
        }
      }),
    ),
  );
  return lanes;
}

function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidMessageError(`${flag} must be a whole number ≥ 0 (got "${text}")`);
  return n;
}
