import { Command } from 'commander';
import { Daemon } from '../daemon';
import { errorMessage } from '../errors';
import { createLogger } from '../logging/logger';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

export function startCommand(): Command {
  return withConfigOptions(new Command('start').description('run the daemon: consume every lane until SIGTERM/SIGINT')).action(
    action(async (flags: ConfigFlags) => {
      const config = configFromFlags(flags);
      const logger = createLogger(config.log.level);
      const daemon = new Daemon({ config, logger });

      let signals = 0;
      const onSignal = (signal: NodeJS.Signals) => {
        signals++;
        if (signals > 1) {
          // A second signal means "now": unacked messages go back to their queues, nothing is lost.
          logger.warn({ signal }, 'second signal: exiting without waiting for in-flight handlers');
          process.exit(1);
        }
        logger.info({ signal }, 'signal received; shutting down');
        daemon.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err: errorMessage(err) }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      process.on('unhandledRejection', (reason) => {
        // A bug in orbit, not in one message: log it and let the supervisor restart a clean process.
        logger.fatal({ err: errorMessage(reason) }, 'unhandled rejection');
        void daemon.stop().finally(() => process.exit(1));
      });

      try {
        await daemon.start();
      } catch (err) {
        await daemon.stop().catch(() => undefined);
        throw err;
      }
    }),
  );
}
