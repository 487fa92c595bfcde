import { existsSync } from 'node:fs';
import { Command } from 'commander';
import type { ResolvedConfig } from '../config/types';
import { ConfigError } from '../errors';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';
import { configView } from './config-view';

export function configCommand(): Command {
  return withConfigOptions(
    new Command('config').description('validate and print the effective configuration as a config file (secrets redacted)'),
  ).action(
    action(async (flags: ConfigFlags) => {
      const config = configFromFlags(flags);
      refuseMissingHandlers(config);
      process.stdout.write(`${JSON.stringify(configView(config), null, 2)}\n`);
    }),
  );
}

/**
 * A handler file that is not there would fail `orbit start` (exit 2): the validator says so
 * first, naming each lane. Only existence is checked: importing a handler runs its code.
 */
function refuseMissingHandlers(config: ResolvedConfig): void {
  const missing = config.lanes.flatMap((l, i) =>
    l.handler !== null && !existsSync(l.handler) ? [{ path: `lanes[${i}].handler`, file: l.handler }] : [],
  );
  if (missing.length === 0) return;
  throw new ConfigError(missing.map((m) => `${m.path}: handler module not found: ${m.file}`).join('\n'), { path: missing[0]!.path });
}
