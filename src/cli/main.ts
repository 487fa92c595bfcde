#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { cancelCommand } from './cancel';
import { configCommand } from './config';
import { dlqCommand } from './dlq';
import { lanesCommand } from './lanes';
import { migrateCommand } from './migrate';
import { publishCommand } from './publish';
import { seedCommand } from './seed';
import { startCommand } from './start';
import { statsCommand } from './stats';
import { topologyCommand } from './topology';
import { uiCommand } from './ui';

/** The installed package's version; found by walking up, as src/ and dist/src/ sit at different depths. */
function packageVersion(): string {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

const program = new Command('orbit')
  .description('a worker daemon on RabbitMQ that runs handlers and reschedules messages')
  .version(packageVersion())
  .addCommand(startCommand())
  .addCommand(publishCommand())
  .addCommand(cancelCommand())
  .addCommand(seedCommand())
  .addCommand(topologyCommand())
  .addCommand(configCommand())
  .addCommand(dlqCommand())
  .addCommand(migrateCommand())
  .addCommand(lanesCommand())
  .addCommand(statsCommand())
  .addCommand(uiCommand());

void program.parseAsync(process.argv);
