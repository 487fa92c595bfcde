/**
 * orbit's public face: the Scheduler for publishing, the Daemon for consuming, outcome
 * helpers and types for handler authors, and the error classes (test them with
 * `instanceof`, or with `isOrbitError`/`isUnrecoverable` when two copies of orbit may meet).
 */
export { Scheduler, type SchedulerOptions, type PublishMessageOptions, type PublishedMessage } from './publish/scheduler';
export type { Settle } from './publish/bundler';
export { Daemon, type DaemonOptions } from './daemon';
export { done, reschedule } from './worker/handler-types';
export type { Handler, HandlerContext, Message, Outcome, DoneOutcome, RescheduleOutcome, RescheduleOptions } from './worker/handler-types';
export type { TimingOptions } from './message/types';
export type { WorkerObserver } from './worker/observer';
export type { CopyKind } from './worker/recent-runs';
export { loadConfig, resolveConfig, redactConfig } from './config';
export type { ResolvedConfig, LaneConfig, ConfigSources, RetryConfig, BackoffConfig, DelayConfig, AmqpConfig } from './config/types';
export {
  OrbitError,
  ConfigError,
  InvalidMessageError,
  DelayOutOfRangeError,
  PublishError,
  BrokerError,
  HandlerLoadError,
  UnrecoverableError,
  HandlerTimeoutError,
  BadOutcomeError,
  BadBodyError,
  isOrbitError,
  isUnrecoverable,
  isBadBody,
} from './errors';
