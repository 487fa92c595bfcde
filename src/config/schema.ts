/**
 * Stage 1 of configuration: the convict schema. It owns shape, types, defaults and the
 * environment variable names; value ranges and relations between keys are stage 2
 * (`validate.ts`), so that every such message has one form and `resolveConfig` checks them
 * for callers that skip convict.
 */
import convict from 'convict';
import { durationProblem, parseDuration } from '../delay/durations';
import type { BodyFormat, Jitter, LogLevel, QueueType } from './types';

/** A duration as configured: milliseconds, or text such as `"90s"` (see `parseDuration`). */
export type DurationInput = number | string;

export interface RawBackoff {
  readonly initial: DurationInput;
  readonly factor: number;
  readonly max: DurationInput;
  readonly jitter: Jitter;
}

export interface RawRetry {
  readonly maxAttempts: number;
  readonly backoff: RawBackoff;
}

/** A lane's retry policy: any key left out (or null) inherits the global `retry`. */
export interface RawLaneRetry {
  readonly maxAttempts?: number | null;
  readonly backoff?: {
    readonly initial?: DurationInput | null;
    readonly factor?: number | null;
    readonly max?: DurationInput | null;
    readonly jitter?: Jitter | null;
  } | null;
}

/** A header value of an HTTP handler: a literal, or where to read it at load. */
export type RawHeaderValue = string | { readonly env: string } | { readonly file: string };

/** `handler` in its object form: an HTTP endpoint instead of a module. */
export interface RawHttpHandler {
  /** Checked (http/https, parses) in stage 2. */
  readonly url: string;
  /** Header name → value; `{ file }` is relative to the config file directory. */
  readonly headers?: Readonly<Record<string, RawHeaderValue>> | null;
}

export interface RawWorkAhead {
  readonly enabled: boolean;
  readonly idle: DurationInput;
  readonly maxAdvance: DurationInput;
  readonly maxRate: number;
}

/** Both null (or the group left out): no limit. Both must be set otherwise. */
export interface RawRateLimit {
  readonly max: number | null;
  readonly per: DurationInput | null;
}

export interface RawBundle {
  readonly max: number;
  readonly linger: DurationInput;
  readonly maxBytes: number;
}

export interface RawLane {
  readonly name: string;
  readonly concurrency: number;
  readonly maxPriority: number;
  /** A module path as written (relative paths are resolved in stage 2), or an HTTP endpoint. */
  readonly handler: string | RawHttpHandler | null;
  readonly timeout: DurationInput;
  readonly format: BodyFormat;
  readonly retry?: RawLaneRetry | null;
  readonly partitions: number;
  readonly queueType: QueueType;
  readonly workAhead: RawWorkAhead;
  readonly rateLimit: RawRateLimit | null;
  readonly bundle: RawBundle;
}

/** `amqp.tls` as configured: file paths as written, empty strings meaning unset. */
export interface RawTls {
  readonly ca: string | null;
  readonly cert: string | null;
  readonly key: string | null;
  readonly passphrase: string | null;
  readonly servername: string | null;
  readonly rejectUnauthorized: boolean;
}

/** What stage 1 hands to stage 2: every key present and of the right type, values unchecked. */
export interface RawConfig {
  readonly amqp: {
    /** One URL, or several separated by commas or whitespace. */
    readonly url: string;
    /** File holding the URL(s); wins over `url` when set. */
    readonly urlFile: string | null;
    readonly heartbeat: DurationInput;
    readonly reconnect: DurationInput;
    readonly publishTimeout: DurationInput;
    readonly connectTimeout: DurationInput;
    readonly tls: RawTls;
  };
  readonly namespace: string;
  readonly delay: { readonly unit: DurationInput; readonly levels: number | null; readonly tolerance: number | string; readonly queueType: QueueType };
  readonly retry: RawRetry;
  readonly lanes: readonly RawLane[];
  readonly shutdown: { readonly timeout: DurationInput };
  readonly log: { readonly level: LogLevel };
  readonly http: { readonly host: string; readonly port: number };
}

/*
 * Custom formats. convict keeps formats in one registry per process, so the names carry an
 * `orbit-` prefix: a bare `duration` would clash with convict-format-with-moment, should
 * anything else in the process register it.
 */
export const DURATION = 'orbit-duration';
export const INT = 'orbit-int';
export const NUMBER = 'orbit-number';
export const TOLERANCE = 'orbit-tolerance';
export const LANES = 'orbit-lanes';
export const REQUIRED_STRING = 'orbit-required-string';
export const BOOLEAN = 'orbit-boolean';
export const HANDLER = 'orbit-handler';

const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

let registered = false;

/**
 * Registers orbit's convict formats; call before building a convict instance from
 * `configSchema` or `laneSchema`. Idempotent, so every entry point can call it.
 */
export function registerFormats(): void {
  if (registered) return;
  registered = true;

  convict.addFormat({
    name: DURATION,
    validate(value: unknown): void {
      const problem = durationProblem(value);
      if (problem !== null) throw new Error(problem);
    },
    // Text (from files, env vars and flags alike) becomes milliseconds here. Unparseable text
    // is kept as is, so that `validate` reports it with its path instead of `load` throwing.
    coerce(value: string): unknown {
      return durationProblem(value) === null ? parseDuration(value) : value;
    },
  });

  convict.addFormat({
    name: INT,
    validate(value: unknown): void {
      if (!Number.isInteger(value)) throw new Error('must be an integer');
    },
    // convict's own `int` uses parseInt, which reads "80x" as 80; a typo should fail instead.
    coerce(value: string): unknown {
      const text = value.trim();
      return INTEGER_TEXT.test(text) ? Number(text) : value;
    },
  });

  convict.addFormat({
    name: NUMBER,
    validate(value: unknown): void {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error('must be a finite number');
      }
    },
    coerce(value: string): unknown {
      const text = value.trim();
      return NUMBER_TEXT.test(text) ? Number(text) : value;
    },
  });

  convict.addFormat({
    name: TOLERANCE,
    validate(value: unknown): void {
      if (tolerance(value) === undefined) throw new Error('must be a fraction (0.02) or a percentage ("2%")');
    },
  });

  convict.addFormat({
    name: REQUIRED_STRING,
    validate(value: unknown): void {
      if (value === null || value === undefined) throw new Error('is required');
      if (typeof value !== 'string') throw new Error('must be a string');
    },
  });

  convict.addFormat({
    name: BOOLEAN,
    validate(value: unknown): void {
      if (typeof value !== 'boolean') throw new Error('must be true or false');
    },
    // convict's own `Boolean` reads any text but "false" as true, so "0" or "no" would enable.
    coerce(value: string): unknown {
      const text = value.trim().toLowerCase();
      return text === 'true' ? true : text === 'false' ? false : value;
    },
  });

  convict.addFormat({
    name: HANDLER,
    // The object form never reaches convict: `checkLanes` takes it out first (convict cannot
    // hold objects under a leaf key) and checks it with `checkHttpHandler`.
    validate(value: unknown): void {
      if (typeof value !== 'string') {
        throw new Error('must be a module path (a string) or an object { "url": ..., "headers"?: ... }');
      }
    },
  });

  convict.addFormat({
    name: LANES,
    // Only the outer shape: each element is checked against `laneSchema` by `checkLanes`,
    // which can name `lanes[i].key` (a format can only fail as a whole, under `lanes`).
    validate(value: unknown): void {
      if (!Array.isArray(value)) throw new Error('must be a JSON array of lane objects');
    },
    // ORBIT_LANES and `--set lanes=...` carry JSON text.
    coerce(value: string): unknown {
      try {
        return JSON.parse(value) as unknown;
      } catch {
        return value;
      }
    },
  });
}

/**
 * A tolerance as configured: a fraction (`0.02`, `"0.02"`) or a percentage (`"2%"`); the
 * fraction, or undefined when it is neither. Its range is stage 2's to check.
 */
export function tolerance(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(value);
  if (!match) return undefined;
  return match[2] === '%' ? Number(match[1]) / 100 : Number(match[1]);
}

/** A duration key; the default is kept as text so that `--help`-style docs read naturally. */
function duration(doc: string, defaultValue: string, env?: string): convict.SchemaObj<DurationInput> {
  return env === undefined
    ? { doc, format: DURATION, default: defaultValue }
    : { doc, format: DURATION, default: defaultValue, env };
}

const JITTERS: readonly Jitter[] = ['full', 'equal', 'none'];
const QUEUE_TYPES: readonly QueueType[] = ['classic', 'quorum'];
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const BODY_FORMATS: readonly BodyFormat[] = ['raw', 'json'];

function tlsFile(doc: string, env: string): convict.SchemaObj<string | null> {
  return { doc, format: String, nullable: true, default: null, env };
}

/** The whole configuration, as convict reads it. */
export const configSchema: convict.Schema<RawConfig> = {
  amqp: {
    url: {
      doc: 'AMQP URL, or several separated by commas for a cluster (tried round-robin).',
      format: String,
      default: 'amqp://guest:guest@127.0.0.1:5672',
      sensitive: true,
      env: 'ORBIT_AMQP_URL',
    },
    urlFile: {
      doc: 'File holding the AMQP URL(s), e.g. a container secret; wins over amqp.url when set.',
      format: String,
      nullable: true,
      default: null,
      env: 'ORBIT_AMQP_URL_FILE',
    },
    heartbeat: duration('AMQP heartbeat, whole seconds; 0 disables.', '10s', 'ORBIT_AMQP_HEARTBEAT'),
    reconnect: duration('Pause between reconnect attempts.', '2s'),
    publishTimeout: duration('How long a publish waits for its broker confirm.', '30s'),
    connectTimeout: duration(
      'How long a command or a starting daemon waits for its first broker connection while the broker is unreachable (a refused login or vhost fails at once).',
      '10s',
      'ORBIT_AMQP_CONNECT_TIMEOUT',
    ),
    tls: {
      ca: tlsFile('CA certificate(s), PEM, relative to the config file directory.', 'ORBIT_AMQP_TLS_CA'),
      cert: tlsFile('Client certificate, PEM; needs amqp.tls.key.', 'ORBIT_AMQP_TLS_CERT'),
      key: tlsFile('Client private key, PEM; needs amqp.tls.cert.', 'ORBIT_AMQP_TLS_KEY'),
      passphrase: {
        doc: 'Passphrase of amqp.tls.key.',
        format: String,
        nullable: true,
        default: null,
        sensitive: true,
        env: 'ORBIT_AMQP_TLS_PASSPHRASE',
      },
      servername: {
        doc: "Host name to verify in the server certificate, when it differs from the URL's.",
        format: String,
        nullable: true,
        default: null,
      },
      rejectUnauthorized: {
        doc: 'Refuse a server certificate that does not verify.',
        format: BOOLEAN,
        default: true,
      },
    },
  },
  namespace: {
    doc: 'Prefix of every exchange and queue: letters, digits, "_" and "-".',
    format: String,
    default: 'orbit',
    env: 'ORBIT_NAMESPACE',
  },
  delay: {
    unit: duration('Delay resolution: delays are rounded up to it.', '1s', 'ORBIT_DELAY_UNIT'),
    levels: {
      doc: 'Longest delay = (2^levels − 1) × unit (1–40); with tolerance 0, the number of binary delay levels. Unset: the most (up to 28) whose queues RabbitMQ accepts with this unit.',
      format: INT,
      nullable: true,
      default: null,
      env: 'ORBIT_DELAY_LEVELS',
    },
    tolerance: {
      doc: 'How late a message may run, relative to its delay ("2%" or 0.02): delays round up to a ladder of queues, one hop each. 0: exact to the unit, through binary delay levels.',
      format: TOLERANCE,
      default: 0,
      env: 'ORBIT_DELAY_TOLERANCE',
    },
    queueType: {
      doc: 'Queue type of the delay-level queues.',
      format: [...QUEUE_TYPES],
      default: 'classic',
      env: 'ORBIT_DELAY_QUEUE_TYPE',
    },
  },
  retry: {
    maxAttempts: { doc: 'Failed attempts per run before dead-lettering.', format: INT, default: 5 },
    backoff: {
      initial: duration('First retry delay.', '1s'),
      factor: { doc: 'Growth of the retry delay per attempt (≥ 1).', format: NUMBER, default: 2 },
      max: duration('Cap on any single retry delay.', '1h'),
      jitter: { doc: 'Randomisation of retry delays.', format: [...JITTERS], default: 'full' },
    },
  },
  lanes: {
    doc: 'Lanes: classes of work with their own queue, concurrency, handler and retry policy.',
    format: LANES,
    default: [],
    env: 'ORBIT_LANES',
    // HTTP handler headers may be literal secrets: convict must not echo the value (e.g. a
    // malformed ORBIT_LANES) in its messages.
    sensitive: true,
  },
  shutdown: {
    timeout: duration('How long a stop waits for in-flight handlers.', '30s', 'ORBIT_SHUTDOWN_TIMEOUT'),
  },
  log: {
    level: { doc: 'Log level.', format: [...LOG_LEVELS], default: 'info', env: 'ORBIT_LOG_LEVEL' },
  },
  http: {
    host: { doc: 'Address of the metrics/health HTTP server.', format: String, default: '0.0.0.0', env: 'ORBIT_HTTP_HOST' },
    port: { doc: 'Port of the metrics/health HTTP server; 0 disables it.', format: INT, default: 9464, env: 'ORBIT_HTTP_PORT' },
  },
};

/** The lane retry keys default to null, meaning "inherit the global retry". */
function inherited(doc: string, format: string | unknown[]): convict.SchemaObj<null> {
  return { doc, format, default: null, nullable: true };
}

/** One element of `lanes`. No `env`: lanes come from files, ORBIT_LANES or overrides as a whole. */
export const laneSchema: convict.Schema<RawLane> = {
  name: { doc: 'Lane name: letters, digits, "_" and "-".', format: REQUIRED_STRING, default: null },
  concurrency: { doc: 'Handler runs at once; also the prefetch.', format: INT, default: 10 },
  maxPriority: { doc: 'Highest message priority (0–255).', format: INT, default: 9 },
  handler: {
    doc: 'Handler module path, relative to the config file directory; or { "url", "headers"? } for an HTTP handler.',
    format: HANDLER,
    nullable: true,
    default: null,
  },
  timeout: duration('Handler time limit.', '30s'),
  format: { doc: 'Body format checked before the handler runs.', format: [...BODY_FORMATS], default: 'raw' },
  retry: {
    maxAttempts: inherited('Overrides retry.maxAttempts.', INT),
    backoff: {
      initial: inherited('Overrides retry.backoff.initial.', DURATION),
      factor: inherited('Overrides retry.backoff.factor.', NUMBER),
      max: inherited('Overrides retry.backoff.max.', DURATION),
      jitter: inherited('Overrides retry.backoff.jitter.', [...JITTERS]),
    },
  },
  partitions: { doc: 'Queues the lane is spread over (1–64).', format: INT, default: 1 },
  queueType: {
    doc: 'Lane queue kind; quorum needs maxPriority 0 on RabbitMQ 3.x (4.x quorum queues have two priority levels).',
    format: [...QUEUE_TYPES],
    default: 'classic',
  },
  workAhead: {
    enabled: { doc: 'Take soonest-due messages early while the lane is idle.', format: BOOLEAN, default: true },
    idle: duration('How long the lane must have been idle first.', '5s'),
    maxAdvance: duration('Never run a message more than this much before it is due.', '10m'),
    maxRate: { doc: 'Messages taken early per second, per daemon (> 0).', format: NUMBER, default: 100 },
  },
  rateLimit: {
    max: { doc: 'Handler starts allowed per rateLimit.per, per daemon (≥ 1).', format: INT, default: null, nullable: true },
    per: { doc: 'Window of rateLimit.max.', format: DURATION, default: null, nullable: true },
  },
  bundle: {
    max: { doc: 'Logical messages per AMQP message (1–10000; 1 is off).', format: INT, default: 1 },
    linger: duration('How long a bundle waits for company.', '100ms'),
    maxBytes: { doc: 'Upper bound of one bundle body (1024 – 16 MiB).', format: INT, default: 262_144 },
  },
};

/** Every key of a schema that holds a value (not a group), in dotted form. */
export function schemaLeafPaths(schema: object, prefix = ''): string[] {
  const paths: string[] = [];
  for (const [key, node] of Object.entries(schema)) {
    const path = prefix + key;
    if (typeof node === 'object' && node !== null && !Array.isArray(node) && !('default' in node)) {
      paths.push(...schemaLeafPaths(node, `${path}.`));
    } else {
      paths.push(path);
    }
  }
  return paths;
}

/** convict reports all problems as one message, one line each. */
export function splitConvictMessage(message: string): string[] {
  return message.split('\n').filter((line) => line.trim() !== '');
}

const PARAM_LINE = /^configuration param '([^']*)'/;
const KEYED_LINE = /^([^\s:']+): /;

/** The configuration key a convict problem line names, if any. */
export function pathOfProblem(line: string): string | undefined {
  return PARAM_LINE.exec(line)?.[1] ?? KEYED_LINE.exec(line)?.[1];
}

/** Rewrites a lane-level convict line so its key reads `lanes[i].key`. */
function prefixProblem(line: string, prefix: string): string {
  if (PARAM_LINE.test(line)) return line.replace(PARAM_LINE, (_all, key: string) => `configuration param '${prefix}${key}'`);
  if (KEYED_LINE.test(line)) return prefix + line;
  return `${prefix.slice(0, -1)}: ${line}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether a schema node is a group of keys rather than a value (convict's own test). */
function isGroup(node: unknown): node is Record<string, unknown> {
  return isPlainObject(node) && !('default' in node);
}

/**
 * Checks the one thing convict cannot report itself: the nesting. convict throws a bare
 * TypeError on an object two levels deep under a value key (`{"namespace": {"a": {"b": 1}}}`)
 * and reports a group given as `5` or `null` as its keys "missing, did you override its
 * parent?". Offending values are dropped from the returned copy (so convict checks the rest)
 * and reported by path. Unknown keys are left to convict's strict mode.
 *
 * @param schema - a convict schema (or group of one)
 * @param value - the matching part of the input, already known to be a plain object
 * @param prefix - path of `value`, ending with a dot, or empty at the top
 */
export function checkNesting(schema: object, value: Record<string, unknown>, prefix: string, problems: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    // Own keys only: `schema['__proto__']` or `schema['constructor']` are not schema nodes.
    const node = Object.prototype.hasOwnProperty.call(schema, key) ? (schema as Record<string, unknown>)[key] : undefined;
    const path = prefix + key;
    if (isGroup(node)) {
      if (!isPlainObject(child)) {
        problems.push(`${path}: must be an object (got ${describe(child)})`);
        continue;
      }
      out[key] = checkNesting(node, child, `${path}.`, problems);
    } else if (node === undefined && (isPlainObject(child) || key === '__proto__')) {
      // An undeclared group is reported here, not handed to convict: convict walks it
      // recursively, building every path string, so deep input took O(depth²) time and then
      // overflowed the stack (a RangeError instead of a ConfigError). And `out.__proto__ = x`
      // would not copy a `__proto__` key but swallow it (or replace out's prototype).
      problems.push(`configuration param '${path}' not declared in the schema`);
    } else if (node !== undefined && isPlainObject(child)) {
      const lanes = isPlainObject(node) && node['format'] === LANES;
      problems.push(`${path}: ${lanes ? 'must be a JSON array of lane objects (got an object)' : 'must be a single value, not an object'}`);
    } else if (typeof child === 'object' && child !== null && hasProtoKey(child)) {
      // convict's copy of the value would drop the key silently (e.g. inside `lanes`).
      problems.push(`${path}: a "__proto__" key is not allowed (found inside this value)`);
    } else {
      out[key] = child;
    }
  }
  return out;
}

/** Whether an own `__proto__` key (JSON.parse makes them) occurs anywhere in `value`; iterative, so depth is no problem. */
export function hasProtoKey(value: object): boolean {
  const stack: unknown[] = [value];
  for (let visited = 0; stack.length > 0 && visited < 1_000_000; visited++) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const c of v) stack.push(c);
      continue;
    }
    if (Object.prototype.hasOwnProperty.call(v, '__proto__')) return true;
    for (const c of Object.values(v)) stack.push(c);
  }
  return false;
}

const UNDECLARED_LINE = /^configuration param '([^']*)' not declared in the schema$/;

/**
 * Adds a hint to "not declared" lines for a key with an `Ms` suffix whose stem is a duration
 * key (`timeoutMs`, `workAhead.idleMs`): the resolved config uses such names, the file does not.
 */
export function hintUndeclared(line: string, leafPaths: ReadonlySet<string>, prefix = ''): string {
  const key = UNDECLARED_LINE.exec(line)?.[1];
  if (key === undefined || !key.startsWith(prefix) || !key.endsWith('Ms')) return line;
  const stem = key.slice(0, -2);
  if (!leafPaths.has(stem.slice(prefix.length))) return line;
  return `${line} (did you mean '${stem}'? It takes a duration such as "5s" or 5000)`;
}

/** HTTP header names are RFC 9110 tokens. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE_FORMS = 'must be a string, { "env": "VAR" } or { "file": "path" }';

/** One header value's shape; the value itself never appears in a message (it may be a secret). */
function checkHeaderValue(value: unknown, path: string, problems: string[]): RawHeaderValue | undefined {
  if (typeof value === 'string') return value;
  if (!isPlainObject(value)) {
    problems.push(`${path}: ${HEADER_VALUE_FORMS} (got ${describe(value)})`);
    return undefined;
  }
  const keys = Object.keys(value);
  const kind = keys[0];
  if (keys.length !== 1 || (kind !== 'env' && kind !== 'file')) {
    const got = keys.length === 0 ? 'an empty object' : `an object with ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
    problems.push(`${path}: ${HEADER_VALUE_FORMS} (got ${got})`);
    return undefined;
  }
  const source = value[kind];
  if (typeof source !== 'string' || source.trim() === '') {
    const what = kind === 'env' ? 'an environment variable name' : 'a file path';
    problems.push(`${path}.${kind}: must be ${what} (got ${typeof source === 'string' ? 'an empty string' : describe(source)})`);
    return undefined;
  }
  return kind === 'env' ? { env: source } : { file: source };
}

/**
 * Stage 1 for `handler` in its object form: known keys, types, header names and value forms.
 * The URL's scheme and syntax are stage 2 (`resolveConfig`), as is reading `{ env }`/`{ file }`.
 *
 * @param at - the key's path, e.g. `lanes[0].handler`
 * @returns a clean copy, or undefined when there were problems (added to `problems`)
 */
export function checkHttpHandler(value: Record<string, unknown>, at: string, problems: string[]): RawHttpHandler | undefined {
  const before = problems.length;
  for (const key of Object.keys(value)) {
    if (key !== 'url' && key !== 'headers') problems.push(`configuration param '${at}.${key}' not declared in the schema`);
  }
  const { url, headers } = value;
  if (url === undefined || url === null) problems.push(`${at}.url: is required`);
  else if (typeof url !== 'string') problems.push(`${at}.url: must be a string (got ${describe(url)})`);

  const checked: Record<string, RawHeaderValue> = {};
  if (headers !== undefined && headers !== null) {
    if (!isPlainObject(headers)) {
      problems.push(`${at}.headers: must be an object of header name → value (got ${describe(headers)})`);
    } else {
      const seen = new Map<string, string>();
      for (const [name, headerValue] of Object.entries(headers)) {
        if (!HEADER_NAME.test(name)) {
          problems.push(`${at}.headers: ${JSON.stringify(name)} is not a valid HTTP header name (letters, digits and !#$%&'*+.^_\`|~-)`);
          continue;
        }
        const lower = name.toLowerCase();
        const first = seen.get(lower);
        if (first !== undefined) {
          problems.push(`${at}.headers: ${JSON.stringify(first)} and ${JSON.stringify(name)} name the same header (names ignore case)`);
          continue;
        }
        seen.set(lower, name);
        const resolved = checkHeaderValue(headerValue, `${at}.headers.${name}`, problems);
        if (resolved !== undefined) checked[name] = resolved;
      }
    }
  }
  if (problems.length > before || typeof url !== 'string') return undefined;
  return { url, headers: checked };
}

/** Group keys of a lane that may be null, meaning "not given": defaults (or inheritance) apply. */
const NULLABLE_GROUPS = ['retry', 'rateLimit', 'bundle'] as const;

/**
 * Rewrites a lane into what convict can check, and takes out what it cannot:
 * - `"retry": null` (or `"backoff": null`) reads naturally as "inherit everything", and
 *   `"rateLimit": null` / `"bundle": null` as "none" / "defaults"; convict would report each key
 *   under them as missing, so they are dropped;
 * - `"workAhead": false` (or `true`) is short for `{ "enabled": false }`;
 * - `handler` in its object form is checked here, since convict cannot hold objects in a value.
 */
function normalizeLane(
  lane: Record<string, unknown>,
  at: string,
  problems: string[],
): { lane: Record<string, unknown>; httpHandler: RawHttpHandler | undefined } {
  const out: Record<string, unknown> = { ...lane };
  for (const key of NULLABLE_GROUPS) if (out[key] === null) delete out[key];
  const retry = out['retry'];
  if (isPlainObject(retry) && retry['backoff'] === null) {
    const { backoff: _inherit, ...retryRest } = retry;
    out['retry'] = retryRest;
  }

  const workAhead = out['workAhead'];
  if (typeof workAhead === 'boolean') {
    out['workAhead'] = { enabled: workAhead };
  } else if (workAhead === null) {
    problems.push(`${at}.workAhead: must be an object, or false to turn work-ahead off (got null)`);
    delete out['workAhead'];
  }

  let httpHandler: RawHttpHandler | undefined;
  const handler = out['handler'];
  if (isPlainObject(handler)) {
    httpHandler = checkHttpHandler(handler, `${at}.handler`, problems);
    delete out['handler'];
  }
  return { lane: out, httpHandler };
}

const LANE_LEAF_PATHS: ReadonlySet<string> = new Set(schemaLeafPaths(laneSchema));

/**
 * Validates each lane against `laneSchema` (one small convict instance per element, as the
 * convict docs suggest for arrays) and applies the lane defaults.
 *
 * @returns the lanes with defaults, and the problems, each naming `lanes[i].key`
 */
/**
 * A `--set` aimed inside one lane: `lanes[0].timeout=5s` or, by name, `lanes.fast.timeout=5s`.
 * Lanes are one array-valued key to convict, so these are applied per lane, below.
 */
export interface LaneOverride {
  /** The lane, by index or by name. */
  readonly lane: number | string;
  /** A key of one lane, dotted (`retry.maxAttempts`). */
  readonly key: string;
  readonly value: string;
  /** As given on the command line, for messages. */
  readonly path: string;
}

const LANE_OVERRIDE = /^lanes(?:\[(\d+)\]|\.([A-Za-z0-9_-]+))\.(.+)$/;

/** The lane override `path` asks for, or undefined when it is not one. */
export function parseLaneOverride(path: string, value: string): LaneOverride | { problem: string } | undefined {
  const m = LANE_OVERRIDE.exec(path);
  if (!m) return undefined;
  const key = m[3]!;
  if (!LANE_LEAF_PATHS.has(key)) return { problem: `${path}: "${key}" is not a lane key (lane keys: ${[...LANE_LEAF_PATHS].join(', ')})` };
  return { lane: m[1] === undefined ? m[2]! : Number(m[1]), key, value, path };
}

export function checkLanes(lanes: readonly unknown[], overrides: readonly LaneOverride[] = []): { lanes: RawLane[]; problems: string[] } {
  registerFormats();
  const problems: string[] = [];
  for (const o of overrides) {
    const found = typeof o.lane === 'number' ? o.lane < lanes.length : lanes.some((l) => isPlainObject(l) && l['name'] === o.lane);
    if (!found) problems.push(`${o.path}: there is no lane ${typeof o.lane === 'number' ? `at index ${o.lane}` : `named "${o.lane}"`} (${lanes.length} configured)`);
  }
  const out: RawLane[] = [];
  lanes.forEach((element, i) => {
    const at = `lanes[${i}]`;
    if (!isPlainObject(element)) {
      problems.push(`${at}: must be an object (got ${describe(element)})`);
      return;
    }
    const own: string[] = [];
    const normalized = normalizeLane(element, at, own);
    const nested = checkNesting(laneSchema, normalized.lane, `${at}.`, own);
    // Empty env and args: lane keys have no env vars, and convict would otherwise read process.argv.
    const lane = convict<RawLane>(laneSchema, { env: {}, args: [] });
    try {
      lane.load(nested);
      // `set` coerces the text as the key's format does for env values ("5" → 5).
      for (const o of overrides) if (o.lane === i || o.lane === element['name']) lane.set(o.key, o.value);
      lane.validate({ allowed: 'strict' });
      if (own.length === 0) {
        const properties = lane.getProperties();
        out.push(normalized.httpHandler === undefined ? properties : { ...properties, handler: normalized.httpHandler });
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      own.push(...splitConvictMessage(message).map((line) => prefixProblem(line, `${at}.`)));
    }
    problems.push(...own.map((line) => hintUndeclared(line, LANE_LEAF_PATHS, `${at}.`)));
  });
  return { lanes: out, problems };
}
