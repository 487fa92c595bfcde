/**
 * The convict schema of orbit's configuration: shape, types, defaults and the environment
 * variable names, and the formats that read them. Stage 1 (`shape.ts`) runs convict over it
 * and checks what convict cannot; value ranges and relations between keys are stage 2
 * (`validate.ts`), so that every such message has one form and `resolveConfig` checks them
 * for callers that skip convict.
 */
import convict from 'convict';
import { durationProblem, parseDuration } from './durations';
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
  /** Overrides `delay.tolerance` for this lane; null: the namespace's. */
  readonly tolerance: number | string | null;
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
    readonly management: { readonly url: string | null; readonly check: boolean };
  };
  readonly namespace: string;
  readonly delay: { readonly unit: DurationInput; readonly levels: number | null; readonly tolerance: number | string; readonly queueType: QueueType; readonly hold: DurationInput | null };
  readonly retry: RawRetry;
  readonly lanes: readonly RawLane[];
  readonly shutdown: { readonly timeout: DurationInput };
  readonly cancel: { readonly retention: DurationInput };
  readonly deadLetters: { readonly queueType: QueueType };
  readonly log: { readonly level: LogLevel };
  readonly http: { readonly host: string; readonly port: number; readonly ui: RawUi };
}

/** `http.ui` as configured. The token itself is never a config key: it comes from a file or `ORBIT_UI_TOKEN`. */
export interface RawUi {
  readonly enabled: boolean;
  readonly readOnly: boolean;
  readonly tokenFile: string | null;
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

/** A coerce that reads text in `form` as a number; other text is kept for `validate` to refuse. */
function numberFrom(form: RegExp): (value: string) => unknown {
  return (value) => {
    const text = value.trim();
    return form.test(text) ? Number(text) : value;
  };
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
    coerce: numberFrom(INTEGER_TEXT),
  });

  convict.addFormat({
    name: NUMBER,
    validate(value: unknown): void {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error('must be a finite number');
      }
    },
    coerce: numberFrom(NUMBER_TEXT),
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
    // The object form never reaches convict: stage 1 (`shape.ts`) takes it out first (convict cannot
    // hold objects under a leaf key) and checks it with `checkHttpHandler`.
    validate(value: unknown): void {
      if (typeof value !== 'string') {
        throw new Error('must be a module path (a string) or an object { "url": ..., "headers"?: ... }');
      }
    },
  });

  convict.addFormat({
    name: LANES,
    // Only the outer shape: stage 1 (`shape.ts`) checks each element against `laneSchema`,
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
    management: {
      url: {
        doc: "RabbitMQ management API, read at start for the broker's file-handle limit and every 5 minutes for its nodes' memory (http(s)://user:pass@host:port/). Unset: each AMQP URL's host on port 15672 (15671 for amqps) with its credentials.",
        format: String,
        nullable: true,
        default: null,
        sensitive: true,
        env: 'ORBIT_AMQP_MANAGEMENT_URL',
      },
      check: {
        doc: 'Read the management API (when reachable) and warn when a node cannot hold the delay queues (at start), or when its memory shows a quorum WAL larger than raft.wal_max_size_bytes = 64 MB would keep (at start and every 5 minutes).',
        format: BOOLEAN,
        default: true,
        env: 'ORBIT_AMQP_MANAGEMENT_CHECK',
      },
    },
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
      default: '2%',
      env: 'ORBIT_DELAY_TOLERANCE',
    },
    queueType: {
      doc: 'Queue type of the delay queues: quorum dead-letters at-least-once, so a broker crash loses nothing; classic can lose messages it is dead-lettering when the broker crashes. (The dead and unroutable queues follow deadLetters.queueType.)',
      format: [...QUEUE_TYPES],
      default: 'quorum',
      env: 'ORBIT_DELAY_QUEUE_TYPE',
    },
    hold: {
      doc: 'On the ladder: consume the rungs whose TTL is at most this, hold each message until it is due and run it from there, one queue pass instead of two (at most 10m; 0: off). Unset: 1m when every lane is unbundled and delay.tolerance is above 0, else off.',
      format: DURATION,
      nullable: true,
      default: null,
      env: 'ORBIT_DELAY_HOLD',
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
  deadLetters: {
    queueType: {
      doc: 'Queue type of the dead and unroutable queues. classic: a look at part of them (dlq list, the console) leaves them in order; quorum: replicated over a cluster\'s nodes (a daemon that fails over still finds them), but a look at part of them moves what it looked at to their end.',
      format: [...QUEUE_TYPES],
      default: 'classic',
      env: 'ORBIT_DEAD_LETTERS_QUEUE_TYPE',
    },
  },
  cancel: {
    retention: duration(
      'How long a cancel is kept (in daemons and on the broker): copies of its id published before it are dropped while it is. Cover your longest delay.',
      '7d',
      'ORBIT_CANCEL_RETENTION',
    ),
  },
  log: {
    level: { doc: 'Log level.', format: [...LOG_LEVELS], default: 'info', env: 'ORBIT_LOG_LEVEL' },
  },
  http: {
    host: { doc: 'Address of the metrics/health HTTP server.', format: String, default: '0.0.0.0', env: 'ORBIT_HTTP_HOST' },
    port: { doc: 'Port of the metrics/health HTTP server; 0 disables it.', format: INT, default: 9464, env: 'ORBIT_HTTP_PORT' },
    ui: {
      enabled: { doc: 'Serve the operator console at /ui/ on the HTTP server (needs a token).', format: BOOLEAN, default: false, env: 'ORBIT_UI_ENABLED' },
      readOnly: { doc: 'Console without replay and purge.', format: BOOLEAN, default: true, env: 'ORBIT_UI_READ_ONLY' },
      tokenFile: {
        doc: 'File holding the console access token (wins over ORBIT_UI_TOKEN when set).',
        format: String,
        nullable: true,
        default: null,
        env: 'ORBIT_UI_TOKEN_FILE',
      },
    },
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
  tolerance: {
    doc: 'Overrides delay.tolerance for this lane ("10%" or 0.1; above 0, on the delay ladder only): how late its messages may run, relative to their delay. null: delay.tolerance.',
    format: TOLERANCE,
    nullable: true,
    default: null,
  },
  bundle: {
    max: { doc: 'Logical messages per AMQP message (1–10000; 1 is off).', format: INT, default: 200 },
    linger: duration('How long a bundle waits for company.', '100ms'),
    maxBytes: { doc: 'Upper bound of one bundle body (1024 – 16 MiB).', format: INT, default: 262_144 },
  },
};
