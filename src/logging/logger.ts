import pino from 'pino';
import type { LogLevel } from '../config/types';

export type Logger = pino.Logger;

/**
 * Structured JSON lines. Secrets never reach the logger in the first place (URLs are
 * redacted before logging); the redact paths are a second line of defence.
 * @param destination 1 for the daemon (stdout, collected by systemd/docker), 2 for CLI
 * commands whose stdout carries their result.
 */
export function createLogger(level: LogLevel, destination: 1 | 2 = 1): Logger {
  return pino(
    {
      level,
      base: { service: 'orbit' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: ['url', 'urls', '*.url', '*.urls', 'password', '*.password'], censor: '***' },
    },
    pino.destination({ fd: destination, sync: destination === 2 }),
  );
}

/** A logger that drops everything, for library use without a daemon. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
