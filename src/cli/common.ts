import { Command, Option } from 'commander';
import { loadConfig } from '../config/load';
import type { ConfigSources, ResolvedConfig } from '../config/types';
import { BrokerRefusedError, ConfigError, errorMessage, HandlerLoadError, InvalidMessageError, OrbitError } from '../errors';

/** Flags every command takes to find its configuration. */
export interface ConfigFlags {
  config?: string;
  envFile?: string;
  set?: string[];
  namespace?: string;
  amqpUrl?: string;
  logLevel?: string;
}

export function withConfigOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-c, --config <file>', 'JSON config file').env('ORBIT_CONFIG'))
    .addOption(new Option('--env-file <file>', 'env file with ORBIT_* variables').env('ORBIT_ENV_FILE'))
    .option('--set <key=value...>', 'override any config key, e.g. --set delay.unit=1m')
    .option('--namespace <ns>', 'prefix of every exchange and queue')
    .option('--amqp-url <url>', 'broker URL(s), comma-separated')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent');
}

/** CLI flags are the highest-precedence source. */
export function configFromFlags(flags: ConfigFlags): ResolvedConfig {
  const overrides: Record<string, string> = {};
  for (const pair of flags.set ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set expects key=value (got "${pair}")`);
    overrides[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (flags.namespace !== undefined) overrides['namespace'] = flags.namespace;
  if (flags.amqpUrl !== undefined) overrides['amqp.url'] = flags.amqpUrl;
  if (flags.logLevel !== undefined) overrides['log.level'] = flags.logLevel;
  const sources: ConfigSources = { configFile: flags.config, envFile: flags.envFile, overrides };
  return loadConfig(sources);
}

/**
 * Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or input. A handler that cannot
 * be loaded (missing, throws on import, syntax error, no export) is configuration: it fails
 * the same way on every restart, so it exits 2, which the systemd unit's
 * `RestartPreventExitStatus=2` (and any supervisor told the same) does not restart.
 */
export function exitCodeFor(err: unknown): number {
  // A broker refusing the login or vhost is configuration too (BrokerRefusedError); an
  // unreachable broker is not: it may come back, so it stays 1 and the supervisor retries.
  if (err instanceof BrokerRefusedError) return 2;
  return err instanceof ConfigError || err instanceof InvalidMessageError || err instanceof HandlerLoadError ? 2 : 1;
}

/** One clear line on stderr for a failed command, with the code when orbit knows it. */
export function reportError(err: unknown): void {
  const code = err instanceof OrbitError ? ` [${err.code}]` : '';
  process.stderr.write(`orbit: ${errorMessage(err)}${code}\n`);
}

/** Wraps a command action so every failure exits with a clear message and code. */
export function action<A extends unknown[]>(run: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await run(...args);
    } catch (err) {
      reportError(err);
      process.exitCode = exitCodeFor(err);
    }
  };
}
