/**
 * Configuration: `loadConfig` gathers and checks every source; the rest of orbit only ever
 * sees the frozen `ResolvedConfig`.
 */
export { loadConfig, CONFIG_FILE_ENV, ENV_FILE_ENV } from './load';
export { resolveConfig, type ResolveContext } from './validate';
export { redactConfig, redactUrl } from './redact';
export { Secret } from './secret';
export type {
  DurationInput,
  RawBackoff,
  RawBundle,
  RawConfig,
  RawHeaderValue,
  RawHttpHandler,
  RawLane,
  RawLaneRetry,
  RawRateLimit,
  RawRetry,
  RawTls,
  RawUi,
  RawWorkAhead,
} from './schema';
export * from './types';
