import { Command } from 'commander';
import type { ResolvedConfig } from '../config/types';
import { configView } from '../config/view';
import { ConfigError } from '../errors';
import { missingHandler } from '../worker/load-handler';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

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
  const missing = config.lanes.flatMap((l, i) => {
    const why = l.handler === null ? undefined : missingHandler(l.handler);
    return why === undefined ? [] : [{ path: `lanes[${i}].handler`, why }];
  });
  if (missing.length === 0) return;
  throw new ConfigError(missing.map((m) => `${m.path}: ${m.why}`).join('\n'), { path: missing[0]!.path });
}
