/**
 * Stage 2 of configuration: value ranges, relations between keys, path resolution, and the
 * frozen `ResolvedConfig`. Stage 1 (`shape.ts`, with convict) has already checked shape and types.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, errnoCode, errorMessage } from '../errors';
import { formatDuration, parseDuration } from './durations';
import { redactUrl } from './redact';
import { HEADER_VALUE_CHARS } from './http-headers';
import { problemsError, type Problem } from './problem';
import { readSmallFile } from './read-small-file';
import { Secret } from './secret';
import { tolerance as toleranceOf, type DurationInput, type RawConfig, type RawHttpHandler, type RawLane, type RawRetry, type RawTls } from './schema';
import type {
  BackoffConfig,
  BundleConfig,
  HeaderSource,
  HttpHandlerConfig,
  LaneConfig,
  RateLimitConfig,
  UiConfig,
  ResolvedConfig,
  RetryConfig,
  TlsConfig,
  WorkAheadConfig,
} from './types';


/** `delay.levels` when unset and the unit allows it: (2^28 − 1) s ≈ 8.5 years at the default unit. */
export const DEFAULT_DELAY_LEVELS = 28;

/**
 * The most levels, up to `cap`, whose longest queue TTL RabbitMQ accepts with `unitMs`: the top
 * binary level holds 2^(levels−1) units; the ladder's top rung the whole (2^levels − 1).
 * Below 1 when even one unit is too long.
 */
export function defaultLevels(unitMs: number, tolerance: number, cap = DEFAULT_DELAY_LEVELS): number {
  const most = tolerance > 0 ? Math.floor(Math.log2(RABBITMQ_MAX_TTL_MS / unitMs + 1)) : Math.floor(Math.log2(RABBITMQ_MAX_TTL_MS / unitMs)) + 1;
  return Math.min(cap, most);
}

/** The largest `x-message-ttl` RabbitMQ accepts (3.10: 315,360,000,000 ms, ten years). */
export const RABBITMQ_MAX_TTL_MS = 315_360_000_000;
/** What `resolveConfig` needs beyond the raw values. */
export interface ResolveContext {
  /** Absolute path of the JSON config file, or null/absent when none was loaded. */
  readonly configFile?: string | null;
  /**
   * Base for relative paths (`lanes[].handler`, `amqp.urlFile`, `amqp.tls.*`, header files).
   * Defaults to the config file's directory, else `process.cwd()`.
   */
  readonly baseDir?: string;
  /**
   * Reads `amqp.urlFile`; injectable for tests. Defaults to reading UTF-8 from disk, at most
   * 64 KiB (see `readSmallFile`). `{ "file" }` header values are read by the daemon only.
   */
  readonly readFile?: (path: string) => string;
  /** Checks that `amqp.tls` files exist; injectable for tests. Defaults to `fs.existsSync`. */
  readonly fileExists?: (path: string) => boolean;
  /** Where `{ "env": "VAR" }` header values are looked up. Defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** What resolving needs besides the raw values, with every default applied. */
interface Io {
  readonly baseDir: string;
  readonly exists: (path: string) => boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Above this a "tolerance" is most likely a percentage written as a bare number (2 for 2 %). */
const MAX_TOLERANCE = 1;

/** A tolerance (`delay.tolerance`, or a lane's at `path`) as a fraction in [0, 1], or null (with the problem added). */
function resolveTolerance(value: number | string, problems: Problems, path = 'delay.tolerance'): number | null {
  const fraction = toleranceOf(value);
  if (fraction === undefined || fraction < 0 || fraction > MAX_TOLERANCE) {
    problems.add(path, `${path} must be a fraction from 0 to 1 (0.02) or a percentage up to 100% ("2%") (got ${JSON.stringify(value)})`);
    return null;
  }
  return fraction;
}

/**
 * A lane's tolerance: its own, else the namespace's. Both sides of the delay path must agree
 * on the layout: on the ladder (`delay.tolerance` > 0) a lane may take another ladder (its
 * rungs are queues named by TTL, declared on first use), never the binary levels (0), which
 * such a namespace does not declare; on the binary levels, no lane may take a ladder.
 */
function resolveLaneTolerance(value: number | string | null, namespace: number | null, at: string, problems: Problems): number {
  if (value === null) return namespace ?? 0;
  const own = resolveTolerance(value, problems, `${at}.tolerance`);
  if (own === null || namespace === null) return own ?? namespace ?? 0;
  if (namespace === 0 && own > 0) {
    problems.add(`${at}.tolerance`, `${at}.tolerance needs the delay ladder, but delay.tolerance is 0 (binary delay levels, exact to the unit): set delay.tolerance above 0 (its lanes may then differ), or remove ${at}.tolerance`);
  } else if (namespace > 0 && own === 0) {
    problems.add(`${at}.tolerance`, `${at}.tolerance must be above 0 while delay.tolerance is (the namespace is on the delay ladder): for exact runs use a small one ("0.1%": delays up to 2,000 units stay exact to the unit), or delay.tolerance 0 for the whole namespace`);
  }
  return own;
}

/**
 * Lane names and the namespace: dots separate routing-key words, so a dot in either would
 * split it in two; the cap keeps `<ns>.lane.<name>.<p>` within AMQP's 255-byte queue names.
 */
const NAME = /^[A-Za-z0-9_-]{1,100}$/;
const AMQP_SCHEME = /^amqps?:\/\//i;
const HTTP_SCHEME = /^https?:\/\//i;
const MAX_DELAY_LEVELS = 40;
/**
 * The longest `delay.hold`: a held message is an unacked delivery for up to its rung's TTL,
 * and RabbitMQ closes a channel holding one longer than `consumer_timeout` (30 min by
 * default, set per queue only from 3.11.15). A third of it leaves room for a broker set lower.
 */
export const MAX_HOLD_MS = 600_000;
/**
 * `delay.hold` when unset and every lane is unbundled, on the ladder: the rungs up to a minute
 * (60 at a unit of 1 s) are held, so a short interval costs the broker one queue pass instead
 * of two: 1.16 × the floor against 0.41 × in the steady loop on quorum rungs (docs/BENCHMARKS.md).
 * Longer rungs gain little (a run there waits minutes anyway) and would keep more unacked.
 */
export const AUTO_HOLD_MS = 60_000;

/**
 * `delay.hold` left unset: {@link AUTO_HOLD_MS} when the ladder is on and every lane is
 * unbundled, else off. A bundled lane fills its bundles in its own prefetch, and a held rung
 * would starve it (the check on a set `delay.hold` below).
 */
export function autoHoldMs(tolerance: number, lanes: readonly { readonly bundle: { readonly max: number } }[]): number {
  return tolerance > 0 && lanes.length > 0 && lanes.every((l) => l.bundle.max <= 1) ? AUTO_HOLD_MS : 0;
}
const MAX_PRIORITY = 255;
const MAX_PARTITIONS = 64;
/** The shortest `cancel.retention`: below a minute a cancel could be gone before a delivery already on its way reads it. */
const MIN_CANCEL_RETENTION_MS = 60_000;
const MAX_BUNDLE = 10_000;
const MIN_BUNDLE_BYTES = 1024;
const MAX_BUNDLE_BYTES = 16 * 1024 * 1024;

/** Collects problems so that one run reports all of them, not just the first. */
class Problems {
  readonly list: Problem[] = [];

  add(path: string, message: string): void {
    this.list.push({ path, message });
  }

  /** Parses a duration, recording a problem (and returning null) when it is invalid. */
  duration(value: DurationInput, path: string): number | null {
    try {
      return parseDuration(value, path);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.add(path, err.message);
      return null;
    }
  }

  atLeast(value: number, min: number, path: string): void {
    if (!(value >= min)) this.add(path, `${path} must be ≥ ${min} (got ${value})`);
  }

  positive(value: number, path: string): void {
    if (!(value > 0)) this.add(path, `${path} must be > 0 (got ${value})`);
  }

  /** A duration that must be > 0; returns its milliseconds, or null after a problem. */
  positiveDuration(value: DurationInput, path: string): number | null {
    const ms = this.duration(value, path);
    if (ms === 0) this.add(path, `${path} must be > 0 (got 0ms)`);
    return ms;
  }

  between(value: number, min: number, max: number, path: string): void {
    if (!(value >= min && value <= max)) {
      this.add(path, `${path} must be between ${min} and ${max} (got ${value})`);
    }
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw problemsError(this.list);
  }
}

/** Freezes `value` and everything reachable from it, so no consumer can alter shared config. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Splits a URL list; commas, spaces and newlines all separate, as secret files vary. */
function splitUrls(text: string): string[] {
  return text.split(/[\s,]+/).filter((url) => url !== '');
}

/** `amqp.management.url`: empty means unset (derived); else an http(s) URL. The message never shows it (credentials). */
function resolveManagementUrl(raw: string | null, problems: Problems): string | null {
  if (raw === null || raw.trim() === '') return null;
  const path = 'amqp.management.url';
  try {
    const url = new URL(raw.trim());
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.toString();
  } catch {
    problems.add(path, `${path} is not a valid URL`);
    return null;
  }
  problems.add(path, `${path} must start with http:// or https://`);
  return null;
}

/**
 * The AMQP URLs, from `amqp.urlFile` when set, else `amqp.url`. Messages name the list index,
 * never the URL: URLs carry passwords and errors end up in logs.
 */
function resolveUrls(raw: RawConfig['amqp'], baseDir: string, read: (path: string) => string, problems: Problems): string[] {
  let source: string;
  let text: string;
  if (raw.urlFile !== null && raw.urlFile !== '') {
    source = 'amqp.urlFile';
    const file = resolve(baseDir, raw.urlFile);
    try {
      text = read(file);
    } catch (err) {
      const code = errnoCode(err) ?? errorMessage(err);
      problems.add(source, `${source} cannot be read: ${file} (${code})`);
      return [];
    }
  } else {
    source = 'amqp.url';
    text = raw.url;
  }

  const urls = splitUrls(text);
  if (urls.length === 0) {
    problems.add(source, `${source} must hold at least one AMQP URL`);
    return [];
  }
  urls.forEach((url, i) => {
    const path = `${source}[${i}]`;
    if (!AMQP_SCHEME.test(url)) {
      problems.add(path, `${path} must start with amqp:// or amqps://`);
      return;
    }
    try {
      new URL(url);
    } catch {
      problems.add(path, `${path} is not a valid URL`);
    }
  });
  return urls;
}

/** Environment variable holding the console token when `http.ui.tokenFile` is unset. */
export const UI_TOKEN_ENV = 'ORBIT_UI_TOKEN';
/** Shorter tokens are guessable; 16 characters of `openssl rand -hex 16` output are not. */
export const UI_TOKEN_MIN_CHARS = 16;

/**
 * `http.ui`: the token from `tokenFile` when set (a file wins, as `amqp.urlFile` wins over
 * `amqp.url`: a mounted secret is the deliberate choice), else `ORBIT_UI_TOKEN`. Read even
 * while the console is off, because `orbit ui` serves it regardless; missing is a problem
 * only when it is on. Messages never show the token.
 */
function resolveUi(
  raw: RawConfig['http']['ui'],
  baseDir: string,
  read: (path: string) => string,
  env: Readonly<Record<string, string | undefined>>,
  problems: Problems,
): UiConfig {
  const tokenFileSetting = setOrNull(raw.tokenFile);
  const tokenFile = tokenFileSetting === null ? null : resolve(baseDir, tokenFileSetting);
  let text: string | null = null;
  let source = UI_TOKEN_ENV;
  if (tokenFile !== null) {
    source = 'http.ui.tokenFile';
    try {
      text = read(tokenFile).trim();
    } catch (err) {
      problems.add('http.ui.tokenFile', `http.ui.tokenFile cannot be read: ${tokenFile} (${errnoCode(err) ?? errorMessage(err)})`);
      return { enabled: raw.enabled, readOnly: raw.readOnly, tokenFile, token: null };
    }
  } else {
    text = setOrNull(env[UI_TOKEN_ENV] ?? null)?.trim() ?? null;
  }
  if (text !== null && text.length < UI_TOKEN_MIN_CHARS) {
    problems.add('http.ui.tokenFile', `http.ui.tokenFile: the console token (${source}) must be at least ${UI_TOKEN_MIN_CHARS} characters (got ${text.length}); e.g. openssl rand -hex 16`);
  } else if (text !== null && /\s/.test(text)) {
    problems.add('http.ui.tokenFile', `http.ui.tokenFile: the console token (${source}) must not contain whitespace`);
  }
  if (raw.enabled && text === null) {
    problems.add(
      'http.ui.tokenFile',
      `http.ui.tokenFile: http.ui.enabled is true but no console token is set: set http.ui.tokenFile (ORBIT_UI_TOKEN_FILE) to a file holding one, or ${UI_TOKEN_ENV}`,
    );
  }
  return { enabled: raw.enabled, readOnly: raw.readOnly, tokenFile, token: text === null || text === '' ? null : new Secret(text) };
}

/** Empty means unset, as for `amqp.urlFile`: compose files often export `VAR=` to clear a value. */
function setOrNull(value: string | null): string | null {
  return value === null || value.trim() === '' ? null : value;
}

/**
 * `amqp.tls`: files made absolute and checked to exist (they are read when connecting, and a
 * typo should stop orbit at start, not at the first reconnect). Never names the passphrase.
 */
function resolveTls(raw: RawTls, urls: readonly string[], io: Io, problems: Problems): TlsConfig {
  const file = (key: 'ca' | 'cert' | 'key'): string | null => {
    const value = setOrNull(raw[key]);
    if (value === null) return null;
    const path = resolve(io.baseDir, value);
    if (!io.exists(path)) problems.add(`amqp.tls.${key}`, `amqp.tls.${key}: file not found: ${path}`);
    return path;
  };
  const tls: TlsConfig = {
    caFile: file('ca'),
    certFile: file('cert'),
    keyFile: file('key'),
    passphrase: setOrNull(raw.passphrase),
    servername: setOrNull(raw.servername),
    rejectUnauthorized: raw.rejectUnauthorized,
  };

  if ((tls.certFile === null) !== (tls.keyFile === null)) {
    const [set, unset] = tls.certFile !== null ? ['cert', 'key'] : ['key', 'cert'];
    problems.add(
      `amqp.tls.${unset}`,
      `amqp.tls.cert and amqp.tls.key must be set together (amqp.tls.${set} is set, amqp.tls.${unset} is not)`,
    );
  }
  if (tls.passphrase !== null && tls.keyFile === null) {
    problems.add('amqp.tls.passphrase', 'amqp.tls.passphrase is set but amqp.tls.key is not (the passphrase unlocks the key)');
  }
  const configured = tls.caFile !== null || tls.certFile !== null || tls.keyFile !== null || tls.passphrase !== null ||
    tls.servername !== null || !tls.rejectUnauthorized;
  // Settings that nothing uses would let one believe the connection is encrypted.
  if (configured && urls.length > 0 && !urls.some((url) => /^amqps:/i.test(url))) {
    problems.add('amqp.tls', 'amqp.tls is set but no AMQP URL uses amqps://, so TLS would not be used');
  }
  return tls;
}

/**
 * The HTTP handler: URL checked, and where each header's value comes from. Only literal
 * values are checked here; variables are captured as loaded (the env file included), and
 * neither a missing variable nor a file is a problem until the daemon resolves them
 * (`resolveHeaders`): a publisher need not have the handler's secrets.
 */
function resolveHttpHandler(raw: RawHttpHandler, at: string, io: Io, problems: Problems): HttpHandlerConfig {
  const url = raw.url;
  const shown = JSON.stringify(redactUrl(url));
  if (!HTTP_SCHEME.test(url)) {
    problems.add(`${at}.url`, `${at}.url must start with http:// or https:// (got ${shown})`);
  } else {
    try {
      new URL(url);
    } catch {
      problems.add(`${at}.url`, `${at}.url is not a valid URL (got ${shown})`);
    }
  }

  const headers: Record<string, HeaderSource> = {};
  for (const [name, spec] of Object.entries(raw.headers ?? {})) {
    const path = `${at}.headers.${name}`;
    if (typeof spec === 'string') {
      if (!HEADER_VALUE_CHARS.test(spec)) {
        problems.add(path, `${path}: its value holds a line break or control character, which HTTP header values cannot`);
        continue;
      }
      headers[name] = { value: spec };
    } else if ('env' in spec) {
      const fromEnv = io.env[spec.env];
      headers[name] = { env: spec.env, value: fromEnv === undefined || fromEnv === '' ? null : fromEnv };
    } else {
      headers[name] = { file: resolve(io.baseDir, spec.file) };
    }
  }
  return { url, headers };
}

/** A retry policy's own values, checked under `prefix` (`retry` or `lanes[i].retry`). */
interface RetryParts {
  maxAttempts: number;
  initialMs: number | null;
  factor: number;
  maxMs: number | null;
  jitter: BackoffConfig['jitter'];
}

function resolveGlobalRetry(raw: RawRetry, problems: Problems): RetryParts {
  const parts: RetryParts = {
    maxAttempts: raw.maxAttempts,
    initialMs: problems.duration(raw.backoff.initial, 'retry.backoff.initial'),
    factor: raw.backoff.factor,
    maxMs: problems.duration(raw.backoff.max, 'retry.backoff.max'),
    jitter: raw.backoff.jitter,
  };
  checkRetry(parts, 'retry', { maxAttempts: true, initial: true, factor: true, max: true }, problems);
  return parts;
}

/** Which keys a policy sets itself: inherited keys were already checked as `retry.*`. */
interface OwnKeys {
  maxAttempts: boolean;
  initial: boolean;
  factor: boolean;
  max: boolean;
}

function checkRetry(parts: RetryParts, prefix: string, own: OwnKeys, problems: Problems): void {
  if (own.maxAttempts) problems.atLeast(parts.maxAttempts, 1, `${prefix}.maxAttempts`);
  if (own.factor) problems.atLeast(parts.factor, 1, `${prefix}.backoff.factor`);
  if (own.max && parts.maxMs !== null && parts.maxMs <= 0) {
    problems.add(`${prefix}.backoff.max`, `${prefix}.backoff.max must be > 0 (got ${formatDuration(parts.maxMs)})`);
  }
  // Only when this policy set one of the two itself (otherwise `retry` reported it already),
  // and not on top of the `max > 0` problem.
  if ((own.initial || own.max) && parts.initialMs !== null && parts.maxMs !== null && parts.maxMs > 0 && parts.initialMs > parts.maxMs) {
    const initial = `${prefix}.backoff.initial (${formatDuration(parts.initialMs)}${own.initial ? '' : ', inherited from retry'})`;
    const max = `${prefix}.backoff.max (${formatDuration(parts.maxMs)}${own.max ? '' : ', inherited from retry'})`;
    problems.add(`${prefix}.backoff.initial`, `${initial} must be ≤ ${max}`);
  }
}

function toRetryConfig(parts: RetryParts): RetryConfig {
  return {
    maxAttempts: parts.maxAttempts,
    backoff: { initialMs: parts.initialMs ?? 0, factor: parts.factor, maxMs: parts.maxMs ?? 0, jitter: parts.jitter },
  };
}

function resolveWorkAhead(raw: RawLane['workAhead'], at: string, problems: Problems): WorkAheadConfig {
  const path = `${at}.workAhead`;
  const idleMs = problems.duration(raw.idle, `${path}.idle`);
  const maxAdvanceMs = problems.duration(raw.maxAdvance, `${path}.maxAdvance`);
  if (maxAdvanceMs === 0) {
    problems.add(`${path}.maxAdvance`, `${path}.maxAdvance must be > 0 (got 0ms); to turn work-ahead off, set ${path}: false`);
  }
  problems.positive(raw.maxRate, `${path}.maxRate`);
  return { enabled: raw.enabled, idleMs: idleMs ?? 0, maxAdvanceMs: maxAdvanceMs ?? 0, maxRate: raw.maxRate };
}

function resolveRateLimit(raw: RawLane['rateLimit'], at: string, problems: Problems): RateLimitConfig | null {
  const path = `${at}.rateLimit`;
  if (raw === null || (raw.max === null && raw.per === null)) return null;
  if (raw.max === null || raw.per === null) {
    const missing = raw.max === null ? 'max' : 'per';
    const given = raw.max === null ? 'per' : 'max';
    problems.add(`${path}.${missing}`, `${path}.${missing} is required when ${path}.${given} is set`);
    return null;
  }
  problems.atLeast(raw.max, 1, `${path}.max`);
  const perMs = problems.positiveDuration(raw.per, `${path}.per`);
  return { max: raw.max, perMs: perMs ?? 0 };
}

function resolveBundle(raw: RawLane['bundle'], at: string, problems: Problems): BundleConfig {
  const path = `${at}.bundle`;
  problems.between(raw.max, 1, MAX_BUNDLE, `${path}.max`);
  const lingerMs = problems.duration(raw.linger, `${path}.linger`);
  problems.between(raw.maxBytes, MIN_BUNDLE_BYTES, MAX_BUNDLE_BYTES, `${path}.maxBytes`);
  return { max: raw.max, lingerMs: lingerMs ?? 0, maxBytes: raw.maxBytes };
}

function resolveLane(raw: RawLane, i: number, global: RetryParts, namespaceTolerance: number | null, io: Io, problems: Problems): LaneConfig {
  const at = `lanes[${i}]`;
  if (!NAME.test(raw.name)) {
    problems.add(
      `${at}.name`,
      `${at}.name ${JSON.stringify(raw.name)} must be 1–100 letters, digits, "_" or "-"; ` +
        'dots are not allowed because they separate routing-key words',
    );
  }
  problems.atLeast(raw.concurrency, 1, `${at}.concurrency`);
  // Quorum delay queues with lane priorities are fine: only the lane queue carries x-max-priority.
  problems.between(raw.maxPriority, 0, MAX_PRIORITY, `${at}.maxPriority`);
  problems.between(raw.partitions, 1, MAX_PARTITIONS, `${at}.partitions`);
  // A quorum lane with priorities needs RabbitMQ 4.0 or later (two levels): that is the
  // broker's to say, so it is checked at connect (topology/broker-features.ts), not here.

  const timeoutMs = problems.positiveDuration(raw.timeout, `${at}.timeout`);

  let handler: string | null = null;
  let httpHandler: HttpHandlerConfig | null = null;
  if (typeof raw.handler === 'string') {
    if (raw.handler.trim() === '') problems.add(`${at}.handler`, `${at}.handler must not be empty (omit it or use null)`);
    else handler = resolve(io.baseDir, raw.handler);
  } else if (raw.handler !== null) {
    httpHandler = resolveHttpHandler(raw.handler, `${at}.handler`, io, problems);
  }

  const retry = raw.retry ?? {};
  const backoff = retry.backoff ?? {};
  const own: OwnKeys = {
    maxAttempts: retry.maxAttempts != null,
    initial: backoff.initial != null,
    factor: backoff.factor != null,
    max: backoff.max != null,
  };
  const parts: RetryParts = {
    maxAttempts: retry.maxAttempts ?? global.maxAttempts,
    initialMs: backoff.initial != null ? problems.duration(backoff.initial, `${at}.retry.backoff.initial`) : global.initialMs,
    factor: backoff.factor ?? global.factor,
    maxMs: backoff.max != null ? problems.duration(backoff.max, `${at}.retry.backoff.max`) : global.maxMs,
    jitter: backoff.jitter ?? global.jitter,
  };
  checkRetry(parts, `${at}.retry`, own, problems);

  return {
    name: raw.name,
    concurrency: raw.concurrency,
    maxPriority: raw.maxPriority,
    handler,
    httpHandler,
    timeoutMs: timeoutMs ?? 0,
    format: raw.format,
    retry: toRetryConfig(parts),
    partitions: raw.partitions,
    queueType: raw.queueType,
    workAhead: resolveWorkAhead(raw.workAhead, at, problems),
    rateLimit: resolveRateLimit(raw.rateLimit, at, problems),
    bundle: resolveBundle(raw.bundle, at, problems),
    tolerance: resolveLaneTolerance(raw.tolerance ?? null, namespaceTolerance, at, problems),
  };
}

/**
 * Stage 2: checks ranges and relations between keys, resolves paths and URLs, converts
 * durations to milliseconds and returns the deeply frozen configuration.
 *
 * @param raw - stage-1 output (`loadConfig` produces it; tests may pass literals)
 * @param context - the config file, the base for relative paths, and injectable I/O
 * @returns the resolved configuration, deeply frozen
 * @throws ConfigError listing every problem, one per line, each starting with its key
 *   (e.g. `lanes[1].retry.maxAttempts must be ≥ 1 (got 0)`); `path` is the first one's key
 */
export function resolveConfig(raw: RawConfig, context: ResolveContext = {}): ResolvedConfig {
  const problems = new Problems();
  const configFile = context.configFile != null ? resolve(context.configFile) : null;
  const baseDir = context.baseDir ?? (configFile !== null ? dirname(configFile) : process.cwd());
  const read = context.readFile ?? readSmallFile;
  const io: Io = { baseDir, exists: context.fileExists ?? existsSync, env: context.env ?? process.env };

  const urls = resolveUrls(raw.amqp, baseDir, read, problems);
  const tls = resolveTls(raw.amqp.tls, urls, io, problems);
  const heartbeatMs = problems.duration(raw.amqp.heartbeat, 'amqp.heartbeat');
  // AMQP negotiates heartbeats in whole seconds; rounding silently would hide a typo like "500ms".
  if (heartbeatMs !== null && heartbeatMs % 1000 !== 0) {
    problems.add('amqp.heartbeat', `amqp.heartbeat must be a whole number of seconds (got ${formatDuration(heartbeatMs)})`);
  }
  const reconnectMs = problems.positiveDuration(raw.amqp.reconnect, 'amqp.reconnect');
  const publishTimeoutMs = problems.positiveDuration(raw.amqp.publishTimeout, 'amqp.publishTimeout');
  const connectTimeoutMs = problems.positiveDuration(raw.amqp.connectTimeout, 'amqp.connectTimeout');
  const managementUrl = resolveManagementUrl(raw.amqp.management.url, problems);

  if (!NAME.test(raw.namespace)) {
    problems.add(
      'namespace',
      `namespace ${JSON.stringify(raw.namespace)} must be 1–100 letters, digits, "_" or "-"; ` +
        'dots are not allowed because they separate routing-key words',
    );
  }

  const unitMs = problems.duration(raw.delay.unit, 'delay.unit');
  if (unitMs === 0) problems.add('delay.unit', 'delay.unit must be ≥ 1ms (got 0ms)');
  const tolerance = resolveTolerance(raw.delay.tolerance, problems);
  // null: unset, decided below from the lanes (`autoHoldMs`); a set value is checked as set.
  const holdMs = raw.delay.hold === null ? null : problems.duration(raw.delay.hold, 'delay.hold');
  if (holdMs !== null && holdMs > MAX_HOLD_MS) {
    problems.add('delay.hold', `delay.hold must be at most ${formatDuration(MAX_HOLD_MS)} (got ${formatDuration(holdMs)}): a held message is an unacked delivery, and RabbitMQ closes a channel that holds one longer than its consumer_timeout (30m by default)`);
  }
  if (holdMs !== null && holdMs > 0 && tolerance === 0) {
    problems.add('delay.hold', 'delay.hold needs the delay ladder, but delay.tolerance is 0 (a binary delay level is not in due order, so its messages cannot be held until due): set delay.tolerance above 0, or delay.hold to 0');
  }
  const levels = raw.delay.levels ?? (unitMs !== null && unitMs > 0 ? defaultLevels(unitMs, tolerance ?? 0) : DEFAULT_DELAY_LEVELS);
  if (raw.delay.levels === null && levels < 1 && unitMs !== null) {
    problems.add('delay.unit', `delay.unit ${formatDuration(unitMs)} is longer than RabbitMQ's longest queue TTL (${RABBITMQ_MAX_TTL_MS} ms, 10 years)`);
  }
  if (raw.delay.levels !== null) problems.between(raw.delay.levels, 1, MAX_DELAY_LEVELS, 'delay.levels');
  if (unitMs !== null && unitMs > 0 && levels >= 1 && levels <= MAX_DELAY_LEVELS) {
    const maxDelay = (2 ** levels - 1) * unitMs;
    // The longest queue TTL: the top binary level's, or the ladder's top rung (the longest delay).
    const topTtl = tolerance !== null && tolerance > 0 ? maxDelay : 2 ** (levels - 1) * unitMs;
    if (maxDelay > Number.MAX_SAFE_INTEGER) {
      problems.add(
        'delay.levels',
        `delay.levels ${levels} with delay.unit ${formatDuration(unitMs)} gives a longest delay of ` +
          `(2^${levels} − 1) × ${unitMs} ms, beyond Number.MAX_SAFE_INTEGER ms; lower one of them`,
      );
    } else if (topTtl > RABBITMQ_MAX_TTL_MS) {
      // The top queue's TTL must be one RabbitMQ accepts, or the queue cannot be declared.
      problems.add(
        'delay.levels',
        `delay.levels ${levels} with delay.unit ${formatDuration(unitMs)} gives the ${tolerance ? 'top rung' : 'top level'} a TTL of ` +
          `${topTtl} ms, above RabbitMQ's limit of ${RABBITMQ_MAX_TTL_MS} ms (10 years); ` +
          `use delay.levels ≤ ${defaultLevels(unitMs, tolerance ?? 0, MAX_DELAY_LEVELS)} with this unit, or leave it unset`,
      );
    }
  }

  const globalRetry = resolveGlobalRetry(raw.retry, problems);

  const lanes = raw.lanes.map((lane, i) => resolveLane(lane, i, globalRetry, tolerance, io, problems));
  // A bundled lane fills its bundles within its own prefetch (LADDER_HELD_MESSAGES); the
  // holder's 50 per rung starve it: 3–7 × the floor held, 11 × not (docs/BENCHMARKS.md).
  const bundledLanes = lanes.filter((l) => l.bundle.max > 1).map((l) => l.name);
  if (holdMs !== null && holdMs > 0 && bundledLanes.length > 0) {
    problems.add('delay.hold', `delay.hold is for unbundled lanes, but ${bundledLanes.map((n) => JSON.stringify(n)).join(', ')} ${bundledLanes.length === 1 ? 'is' : 'are'} bundled: set their bundle.max to 1, or delay.hold to 0 (held bundles fill worse than bundles in their lane)`);
  }
  const resolvedHoldMs = raw.delay.hold === null ? autoHoldMs(tolerance ?? 0, lanes) : (holdMs ?? 0);
  const firstByName = new Map<string, number>();
  raw.lanes.forEach((lane, i) => {
    const first = firstByName.get(lane.name);
    if (first === undefined) firstByName.set(lane.name, i);
    else problems.add(`lanes[${i}].name`, `lanes[${i}].name ${JSON.stringify(lane.name)} duplicates lanes[${first}].name`);
  });

  const shutdownMs = problems.duration(raw.shutdown.timeout, 'shutdown.timeout');
  const retentionMs = problems.duration(raw.cancel.retention, 'cancel.retention');
  if (retentionMs !== undefined && retentionMs !== null && retentionMs < MIN_CANCEL_RETENTION_MS) {
    problems.add('cancel.retention', `cancel.retention must be at least 1m (got ${formatDuration(retentionMs)}): a cancel must outlive the copies it drops`);
  } else if (retentionMs && unitMs && retentionMs < 4 * unitMs) {
    // A long delay travels in hops of at most retention / (2 × (1 + tolerance)) (delay/waypoints.ts):
    // with less than 4 units a hop could not even hold one unit and its slack.
    problems.add('cancel.retention', `cancel.retention must be at least 4 × delay.unit (${formatDuration(4 * unitMs)}; got ${formatDuration(retentionMs)}): a long delay travels in hops of at most half the retention`);
  }
  if (raw.http.host.trim() === '') problems.add('http.host', 'http.host must not be empty');
  problems.between(raw.http.port, 0, 65535, 'http.port');
  const ui = resolveUi(raw.http.ui, baseDir, read, io.env, problems);
  if (raw.http.ui.enabled && raw.http.port === 0) {
    problems.add('http.ui.enabled', 'http.ui.enabled is true but http.port is 0, which turns the HTTP server (and so the console) off');
  }

  problems.throwIfAny();

  // throwIfAny passed, so every duration parsed: the `?? 0` fallbacks are unreachable.
  const resolved: ResolvedConfig = {
    amqp: {
      urls,
      heartbeatSeconds: (heartbeatMs ?? 0) / 1000,
      reconnectMs: reconnectMs ?? 0,
      publishTimeoutMs: publishTimeoutMs ?? 0,
      connectTimeoutMs: connectTimeoutMs ?? 0,
      tls,
      management: { url: managementUrl, check: raw.amqp.management.check },
    },
    namespace: raw.namespace,
    delay: { unitMs: unitMs ?? 0, levels, tolerance: tolerance ?? 0, queueType: raw.delay.queueType, holdMs: resolvedHoldMs },
    lanes,
    retry: toRetryConfig(globalRetry),
    shutdown: { timeoutMs: shutdownMs ?? 0 },
    cancel: { retentionMs: retentionMs ?? 0 },
    deadLetters: { queueType: raw.deadLetters.queueType },
    log: { level: raw.log.level },
    http: { host: raw.http.host, port: raw.http.port, ui },
    configFile,
  };
  return deepFreeze(resolved);
}
