import { Command } from 'commander';
import { redactConfig } from '../config/redact';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

export function configCommand(): Command {
  return withConfigOptions(
    new Command('config').description('validate and print the effective configuration (secrets redacted)'),
  ).action(
    action(async (flags: ConfigFlags) => {
      process.stdout.write(`${JSON.stringify(redactConfig(configFromFlags(flags)), null, 2)}\n`);
    }),
  );
}
