import { Command } from 'commander';
import { Registry } from 'prom-client';
import type { ResolvedConfig } from '../config/types';
import { InvalidMessageError } from '../errors';
import { HttpServer } from '../http/server';
import { UiConsole } from '../http/ui';
import { createLogger } from '../logging/logger';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface UiFlags extends ConfigFlags {
  host?: string;
  port?: string;
}

/**
 * `orbit ui`: the console without a daemon, against the broker only: it consumes nothing and
 * declares nothing (a passive session, as `orbit stats`). Running the command is the opt-in,
 * so `http.ui.enabled` need not be true; the token is required all the same, and
 * `http.ui.readOnly` applies as in the daemon. Rates and in-flight counts show as n/a: only
 * a daemon has them.
 */
export function uiCommand(): Command {
  return withConfigOptions(
    new Command('ui')
      .description('serve the operator console (/ui/) against the broker, without consuming (needs the http.ui token)')
      .option('--host <address>', 'listen address (default: http.host)')
      .option('--port <port>', 'listen port (default: http.port; 0 picks a free one)'),
  ).action(
    action(async (flags: UiFlags) => {
      const config: ResolvedConfig = configFromFlags(flags);
      const host = flags.host ?? config.http.host;
      const port = flags.port === undefined ? config.http.port : portOf(flags.port);
      const logger = createLogger(config.log.level);
      const ui = new UiConsole({ config, logger });
      const server = new HttpServer({ registry: new Registry(), readiness: () => ({ ready: true }), ui }, logger);
      try {
        await ui.connect();
        const bound = await server.listen(host, port);
        // One plain line for the person who ran it; the token is never printed.
        process.stderr.write(`orbit ui: console at http://${host.includes(':') ? `[${host}]` : host}:${bound}/ui/ (${ui.readOnly ? 'read-only' : 'actions enabled'}); open it with ?token=<your token>\n`);
      } catch (err) {
        await server.close().catch(() => undefined);
        await ui.close();
        throw err;
      }
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.removeListener('SIGINT', stop);
          process.removeListener('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await server.close();
      await ui.close();
    }),
  );
}

function portOf(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidMessageError(`--port must be 0–65535 (got "${text}")`, { code: 'BAD_PORT' });
  return n;
}
