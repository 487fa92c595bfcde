import { Command } from 'commander';
import { Daemon } from '../daemon';
import type { ResolvedConfig } from '../config/types';
import { ConfigError, errorMessage, isOrbitError } from '../errors';
import { createLogger, type Logger } from '../logging/logger';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

export function startCommand(): Command {
  return withConfigOptions(new Command('start').description('run the daemon: consume every lane until SIGTERM/SIGINT')).action(
    action(async (flags: ConfigFlags) => {
      let config: ResolvedConfig;
      try {
        config = configFromFlags(flags);
      } catch (err) {
        // No configured level yet: the default one, so the failure reaches the log pipeline.
        logStartFailure(createLogger('info'), err);
        throw err;
      }
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
        logStartFailure(logger, err);
        await daemon.stop().catch(() => undefined);
        throw err;
      }
    }),
  );
}

/**
 * A daemon's fatal start error as one JSON log line beside all its others (stdout), so a log
 * pipeline sees why the service stopped; `action` still writes the one plain line on stderr
 * that a person at a terminal reads.
 */
function logStartFailure(logger: Logger, err: unknown): void {
  const fields: Record<string, unknown> = { err: errorMessage(err) };
  if (isOrbitError(err)) fields.code = err.code;
  if (err instanceof ConfigError && err.path !== undefined) fields.path = err.path;
  logger.fatal(fields, 'orbit start failed');
}
