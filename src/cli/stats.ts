import { Command } from 'commander';
import { BrokerSession } from '../publish/session';
import type { ResolvedConfig } from '../config/types';
import { errorMessage, InvalidMessageError } from '../errors';
import { createLogger } from '../logging/logger';
import { collectStats, type CollectOptions, type StatsSnapshot } from '../stats/collect';
import { metricsUrl } from '../stats/in-flight';
import { renderStats } from '../stats/render';
import { action, configFromFlags, type ConfigFlags, withConfigOptions } from './common';

interface StatsFlags extends ConfigFlags {
  json?: boolean;
  watch?: boolean | string;
  metricsUrl?: string[];
  all?: boolean;
}

const CLEAR = '\x1b[2J\x1b[H';
const SEPARATOR = `${'-'.repeat(72)}\n`;
const DEFAULT_WATCH_SECONDS = 2;

export function statsCommand(): Command {
  return withConfigOptions(
    new Command('stats')
      .description('lanes, delay levels, dead and unroutable counts, and a forecast of what falls due soon')
      .option('--json', 'one JSON object (with --watch: one per line)')
      .option('--watch [seconds]', `refresh every so many seconds (default ${DEFAULT_WATCH_SECONDS}) until Ctrl-C`)
      .option('--metrics-url <url...>', "a daemon's /metrics URL for in-flight counts (repeatable; summed)")
      .option('--all', 'show every delay level, including empty ones'),
  ).action(
    action(async (flags: StatsFlags) => {
      const intervalMs = flags.watch === undefined || flags.watch === false ? undefined : watchInterval(flags.watch);
      const metricsUrls = (flags.metricsUrl ?? []).map(metricsUrl);
      const config: ResolvedConfig = configFromFlags(flags);
      // Only looks: a mistyped --namespace must be reported, not declared (and shown as zeros).
      const session = await BrokerSession.open(config, 'cli', createLogger(config.log.level, 2), { topology: 'passive' });
      const show = (s: StatsSnapshot): string =>
        flags.json ? `${JSON.stringify(s, null, intervalMs === undefined ? 2 : undefined)}\n` : renderStats(s, { allLevels: flags.all });
      try {
        if (intervalMs === undefined) {
          process.stdout.write(show(await collectStats(session, config, { metricsUrls })));
        } else {
          await watch(intervalMs, !flags.json, (timeoutMs) => collectStats(session, config, { metricsUrls, channelTimeoutMs: timeoutMs }), show);
        }
      } finally {
        await session.close();
      }
    }),
  );
}

function watchInterval(value: true | string): number {
  if (value === true) return DEFAULT_WATCH_SECONDS * 1000;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0.1) {
    throw new InvalidMessageError(`--watch takes a number of seconds ≥ 0.1 (got "${value}")`, { code: 'BAD_INTERVAL' });
  }
  return Math.round(seconds * 1000);
}

/**
 * Redraws until SIGINT or SIGTERM, then returns (exit 0). A failed sample is reported in
 * place of the screen and retried at the next tick: the session reconnects by itself.
 */
async function watch(
  intervalMs: number,
  screen: boolean,
  collect: (timeoutMs: CollectOptions['channelTimeoutMs']) => Promise<StatsSnapshot>,
  show: (s: StatsSnapshot) => string,
): Promise<void> {
  let stopping = false;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const onSignal = (): void => {
    stopping = true;
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tty = screen && process.stdout.isTTY === true;
  try {
    for (let first = true; !stopping; first = false) {
      let text: string;
      try {
        const s = await Promise.race([collect(Math.max(intervalMs, 5000)), stopped]);
        if (s === undefined) break;
        text = show(s);
      } catch (err) {
        if (stopping) break;
        process.stderr.write(`orbit: ${errorMessage(err)} (retrying)\n`);
        text = '';
      }
      if (text) {
        if (tty) process.stdout.write(CLEAR + text);
        else process.stdout.write(screen && !first ? SEPARATOR + text : text);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((r) => (timer = setTimeout(r, intervalMs))), stopped]);
      clearTimeout(timer);
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
