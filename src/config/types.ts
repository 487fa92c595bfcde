/**
 * The resolved configuration that the rest of orbit receives: frozen, typed, every
 * duration in milliseconds, every path absolute, every default applied.
 */
import type { Secret } from './secret';

export type QueueType = 'classic' | 'quorum';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type Jitter = 'full' | 'equal' | 'none';
export type BodyFormat = 'raw' | 'json';

export interface BackoffConfig {
  /** First retry delay. @defaultValue 1 s */
  readonly initialMs: number;
  /** Growth per attempt. @defaultValue 2 */
  readonly factor: number;
  /** Cap on any single retry delay. @defaultValue 1 h */
  readonly maxMs: number;
  /** `full`: uniform in [0, d]; `equal`: uniform in [d/2, d]; `none`: exactly d. @defaultValue 'full' */
  readonly jitter: Jitter;
}

export interface RetryConfig {
  /** Failed attempts allowed per run before the message is dead-lettered. @defaultValue 5 */
  readonly maxAttempts: number;
  readonly backoff: BackoffConfig;
}

/** Taking soonest-due messages early while a lane is idle (see DESIGN.md, "Work-ahead"). */
export interface WorkAheadConfig {
  /** @defaultValue true */
  readonly enabled: boolean;
  /** How long the lane must have had free capacity and an empty queue first. @defaultValue 5 s */
  readonly idleMs: number;
  /** Never run a message more than this much before it is due. @defaultValue 10 min */
  readonly maxAdvanceMs: number;
  /** Messages taken early per second by one daemon for this lane. @defaultValue 100 */
  readonly maxRate: number;
}

/** A token bucket on handler starts: at most `max` per `perMs`, per daemon. */
export interface RateLimitConfig {
  readonly max: number;
  readonly perMs: number;
}

/**
 * Where an HTTP handler header's value comes from: the literal, an environment variable, or
 * a file. Only the daemon reads the secrets and fails on a missing one (`resolveHeaders`,
 * `config/http-headers.ts`): publishing, stats and every other command load the same config
 * on machines that do not have the handler's variables or files.
 */
export type HeaderSource =
  | { readonly value: string }
  /** `value`: the variable as the config was loaded (env file included); null when unset or empty. */
  | { readonly env: string; readonly value: string | null }
  /** An absolute path, read when the daemon starts. */
  | { readonly file: string };

/** A handler that is an HTTP endpoint (any language) instead of a module. */
export interface HttpHandlerConfig {
  readonly url: string;
  /** Each header's source, by header name; secret: never log. */
  readonly headers: Readonly<Record<string, HeaderSource>>;
}

/** Many logical messages per AMQP message (DESIGN.md, "Bundles"); off when `max` is 1. */
export interface BundleConfig {
  /** Logical messages per AMQP message at most; 1 turns bundles off. On the delay ladder it also sets the prefetch: 100,000 logical messages in bundles of `max` (`LADDER_HELD_MESSAGES`). @defaultValue 200 */
  readonly max: number;
  /** How long a bundle waits for company. @defaultValue 100 ms */
  readonly lingerMs: number;
  /** Upper bound of one bundle's body. @defaultValue 256 KiB */
  readonly maxBytes: number;
}

export interface LaneConfig {
  /** Letters, digits, `_` and `-`; no dots (dots separate routing-key words). */
  readonly name: string;
  /** Handler runs at once; also the consumer prefetch. @defaultValue 10 */
  readonly concurrency: number;
  /** Highest priority accepted (0–255, RabbitMQ recommends ≤ 10). @defaultValue 9 */
  readonly maxPriority: number;
  /** Absolute path of the handler module; null when the handler is HTTP or for publish-only configs. */
  readonly handler: string | null;
  /** Set when `handler` is `{ url, headers }` in the config. */
  readonly httpHandler: HttpHandlerConfig | null;
  /** Handler time limit. @defaultValue 30 s */
  readonly timeoutMs: number;
  /** Body format check before the handler runs. @defaultValue 'raw' */
  readonly format: BodyFormat;
  readonly retry: RetryConfig;
  /** Queues the lane is spread over (`<ns>.lane.<name>.<p>` when > 1). @defaultValue 1 */
  readonly partitions: number;
  /** Lane queue kind; `quorum` needs `maxPriority: 0` on RabbitMQ 3.x (4.x quorum queues have two priority levels: 0–4 and 5+). @defaultValue 'classic' */
  readonly queueType: QueueType;
  readonly workAhead: WorkAheadConfig;
  /** null: no limit. */
  readonly rateLimit: RateLimitConfig | null;
  readonly bundle: BundleConfig;
  /**
   * How late this lane's messages may run, relative to their delay: `lanes[].tolerance`, else
   * `delay.tolerance`. Above 0 whenever `delay.tolerance` is (the lane's delays round up to the
   * rungs of its own ladder; rungs are queues named by their TTL, shared by every ladder that
   * has that TTL); 0 only when the namespace is on the binary levels. @defaultValue delay.tolerance
   */
  readonly tolerance: number;
}

/** TLS for `amqps://` URLs. Paths are absolute; files are read when connecting. */
export interface TlsConfig {
  readonly caFile: string | null;
  readonly certFile: string | null;
  readonly keyFile: string | null;
  /** Secret: never log. */
  readonly passphrase: string | null;
  /** Host name to verify, when it differs from the URL's. */
  readonly servername: string | null;
  /** @defaultValue true */
  readonly rejectUnauthorized: boolean;
}

export interface AmqpConfig {
  /** One URL per cluster node, tried round-robin. Secret: never log. */
  readonly urls: readonly string[];
  /** AMQP heartbeat. @defaultValue 10 s */
  readonly heartbeatSeconds: number;
  /** Pause between reconnect attempts. @defaultValue 2 s */
  readonly reconnectMs: number;
  /** How long a publish waits for its confirm before failing. @defaultValue 30 s */
  readonly publishTimeoutMs: number;
  /**
   * How long the first connection may take while the broker is unreachable (refused,
   * timing out), before a command or a starting daemon gives up naming the broker and the
   * last error. A refused login or vhost fails at once: retrying cannot heal it.
   * @defaultValue 10 s
   */
  readonly connectTimeoutMs: number;
  readonly tls: TlsConfig;
  /** RabbitMQ's management API, read at start and, with quorum queues, every 5 minutes (`amqp/read-broker-nodes.ts`). */
  readonly management: {
    /** Secret (it may carry credentials): never log. null: derived from each AMQP URL. @defaultValue null */
    readonly url: string | null;
    /** Warn when a node cannot hold the delay queues (at start) or shows a large quorum WAL (`topology/broker-memory.ts`). @defaultValue true */
    readonly check: boolean;
  };
}

export interface DelayConfig {
  /** Resolution: delays are rounded up to it. @defaultValue 1 s */
  readonly unitMs: number;
  /**
   * Longest delay = (2^levels − 1) × unit; with `tolerance` 0 also the number of binary delay
   * levels. @defaultValue the most, up to 28, whose queue TTLs RabbitMQ accepts with this unit
   */
  readonly levels: number;
  /**
   * How late a message may run, as a fraction of its delay (0.02 = 2 %): above 0, delays round
   * up to a ladder of fixed-TTL queues (`delay/ladder.ts`), one hop each, and bundles may wait
   * for company within it; 0 keeps delays exact to the unit through the binary levels.
   * @defaultValue 0.02 (2 %: the broker needs the file handles for its rungs, README "The delay ladder")
   */
  readonly tolerance: number;
  /**
   * Delay queue kind. Quorum dead-letters at-least-once, so a broker crash loses nothing;
   * classic dead-letters at-most-once (README "Broker crashes"). The dead and unroutable
   * queues follow `deadLetters.queueType`.
   * @defaultValue 'quorum'
   */
  readonly queueType: QueueType;
  /**
   * On the ladder: the daemon consumes the rungs whose TTL is at most this, holds each message
   * until it is due and runs it from there (`worker/rung-holder.ts`). A run then costs the
   * broker one queue pass instead of two (the rung, then the lane) and no dead-lettering
   * (docs/BENCHMARKS.md, "Consuming the short rungs"). At most `MAX_HOLD_MS`: a held message
   * is an unacked delivery, and RabbitMQ closes a channel holding one longer than its
   * `consumer_timeout` (30 min by default). 0: off. Unset, `AUTO_HOLD_MS` (1 min) when the
   * ladder is on and every lane is unbundled, else 0 (`autoHoldMs` in `validate.ts`).
   * @defaultValue 60000 when every lane is unbundled, else 0
   */
  readonly holdMs: number;
}

/** Cancel and replace (README, "Cancel and replace"). */
export interface CancelConfig {
  /**
   * How long a cancel is kept, in each daemon's memory and in the namespace's tombstone
   * stream: while it is, copies of its id published before it are dropped when they come
   * due. It must cover the longest delay a copy may wait (and any lane backlog or outage);
   * a copy due later than that after the cancel runs.
   * @defaultValue 7 days
   */
  readonly retentionMs: number;
}

/** The operator console (`http.ui`, README "Console"). */
export interface UiConfig {
  /** Serve `/ui/` on the daemon's HTTP server. @defaultValue false */
  readonly enabled: boolean;
  /** Hide replay and purge, and refuse them in the API. @defaultValue true */
  readonly readOnly: boolean;
  /** Absolute path of the token file; null when unset. @defaultValue null */
  readonly tokenFile: string | null;
  /**
   * The access token: the file's content (trimmed) when `tokenFile` is set, else the
   * environment's `ORBIT_UI_TOKEN`; null when neither. A `Secret`, so it prints as `***`
   * wherever the config is serialised or logged. @defaultValue null
   */
  readonly token: Secret | null;
}

/** The dead and unroutable queues. */
export interface DeadLettersConfig {
  /**
   * Their queue type. Nothing dead-letters out of them (what they get is published to them,
   * confirmed and persistent), so quorum adds replication, not crash safety on one node; and
   * a quorum queue puts what a look hands back at its end, so a look at part of it (a page of
   * `dlq list` or the console) moves what it looked at. On a cluster, quorum keeps them
   * available when their node dies: a classic one there holds up every daemon's topology
   * assert until its node is back.
   * @defaultValue 'classic'
   */
  readonly queueType: QueueType;
}

export interface ResolvedConfig {
  readonly amqp: AmqpConfig;
  /** Prefix of every exchange and queue. @defaultValue 'orbit' */
  readonly namespace: string;
  readonly delay: DelayConfig;
  readonly lanes: readonly LaneConfig[];
  /** Default retry policy for lanes that set none. */
  readonly retry: RetryConfig;
  readonly shutdown: { /** @defaultValue 30 s */ readonly timeoutMs: number };
  readonly cancel: CancelConfig;
  readonly deadLetters: DeadLettersConfig;
  readonly log: { /** @defaultValue 'info' */ readonly level: LogLevel };
  readonly http: {
    /** @defaultValue '0.0.0.0' */ readonly host: string;
    /** @defaultValue 9464; 0 disables */ readonly port: number;
    readonly ui: UiConfig;
  };
  /** Absolute path of the JSON config file, when one was loaded. */
  readonly configFile: string | null;
}

/** What the topology of a namespace depends on: its queues, exchanges and bindings, and every look at them. */
export type TopologyConfig = Pick<ResolvedConfig, 'namespace' | 'delay' | 'lanes' | 'deadLetters'>;

/** Where configuration comes from, in rising precedence. */
export interface ConfigSources {
  /** JSON file (`--config` or `ORBIT_CONFIG`). */
  readonly configFile?: string;
  /** dotenv file (`--env-file` or `ORBIT_ENV_FILE`), beneath real environment variables. */
  readonly envFile?: string;
  /** The environment; defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Highest precedence: dotted paths from CLI flags, e.g. `{ 'delay.unit': '1m' }`. */
  readonly overrides?: Readonly<Record<string, string>>;
  /** Base for relative paths when no config file is given; defaults to `process.cwd()`. */
  readonly cwd?: string;
}
