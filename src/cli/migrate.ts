import { Command } from 'commander';
import { BrokerSession } from '../publish/session';
import { createLogger } from '../logging/logger';
import { migrateQueues } from '../migrate/migrate-queues';
import { buildTopology } from '../topology/build';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface MigrateFlags extends ConfigFlags {
  dryRun?: boolean;
}

/**
 * `orbit migrate`: redeclares the queues an older orbit or an older broker declared with
 * other arguments (after a RabbitMQ upgrade to 3.12+ or 4.x), losing no message. The
 * daemons of the namespace must be stopped; publishers may go on.
 */
export function migrateCommand(): Command {
  return withConfigOptions(
    new Command('migrate')
      .description("redeclare queues declared by an older orbit or broker with this orbit's arguments, losing nothing (stop the daemons first)")
      .option('--dry-run', 'only list the queues that differ'),
  ).action(
    action(async (flags: MigrateFlags) => {
      const config = configFromFlags(flags);
      // Opening the session finds the queues that differ: --dry-run only compares the queues
      // that exist; a migration also declares what is missing, but never starts a namespace.
      const session = await BrokerSession.open(
        config,
        'cli',
        createLogger(config.log.level === 'info' ? 'warn' : config.log.level, 2),
        flags.dryRun ? { topology: 'passive', inspect: buildTopology(config).queues.map((q) => q.name) } : { topology: 'existing' },
      );
      try {
        const drifts = session.topology.drifts();
        const broker = session.topology.broker?.version ?? 'unknown';
        if (drifts.length === 0) {
          process.stdout.write(`namespace ${config.namespace} on RabbitMQ ${broker}: every queue is as this orbit declares it; nothing to migrate\n`);
        }
        for (const d of drifts) process.stdout.write(`${d.queue}: ${d.argument} (${d.severity}): ${d.why}\n`);
        if (flags.dryRun) return;
        const done = await migrateQueues(session, config, {
          onQueue: (d) => process.stdout.write(`migrating ${d.queue} …\n`),
        });
        for (const m of done) {
          process.stdout.write(
            `migrated ${m.drift.queue}: ${m.moved} message(s) put back` + (m.duplicatesDropped ? `, ${m.duplicatesDropped} duplicate(s) dropped` : '') + '\n',
          );
        }
      } finally {
        await session.close();
      }
    }),
  );
}
