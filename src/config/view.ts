import { formatDuration as duration } from './durations';
import { MASK, redactUrl } from './redact';
import type { HeaderSource, LaneConfig, ResolvedConfig, RetryConfig } from './types';

/**
 * The effective configuration in the keys and units a config file uses (`delay.unit: "1s"`,
 * `lanes[].timeout`, `lanes[].handler: { url, headers }`), not the resolved shape the code
 * reads (`unitMs`, `httpHandler`): what `orbit config` prints is itself a valid config file,
 * so a user can save it, edit it and load it again.
 *
 * The file-shaped twin of `redactConfig` (which keeps the resolved shape, for the library API).
 * Secrets are masked as in logs: URL passwords, the TLS passphrase and literal HTTP handler
 * header values print as `***`; a header read from an environment variable or a file prints
 * where it comes from (`{ "env": "TOKEN" }`), never its value.
 */
export function configView(cfg: ResolvedConfig): unknown {
  return {
    namespace: cfg.namespace,
    amqp: {
      url: cfg.amqp.urls.map(redactUrl).join(','),
      heartbeat: duration(cfg.amqp.heartbeatSeconds * 1000),
      reconnect: duration(cfg.amqp.reconnectMs),
      publishTimeout: duration(cfg.amqp.publishTimeoutMs),
      connectTimeout: duration(cfg.amqp.connectTimeoutMs),
      tls: {
        ca: cfg.amqp.tls.caFile,
        cert: cfg.amqp.tls.certFile,
        key: cfg.amqp.tls.keyFile,
        passphrase: cfg.amqp.tls.passphrase === null ? null : MASK,
        servername: cfg.amqp.tls.servername,
        rejectUnauthorized: cfg.amqp.tls.rejectUnauthorized,
      },
      management: { url: cfg.amqp.management.url === null ? null : redactUrl(cfg.amqp.management.url), check: cfg.amqp.management.check },
    },
    delay: {
      unit: duration(cfg.delay.unitMs),
      levels: cfg.delay.levels,
      tolerance: tolerance(cfg.delay.tolerance),
      queueType: cfg.delay.queueType,
      hold: duration(cfg.delay.holdMs),
    },
    retry: retry(cfg.retry),
    lanes: cfg.lanes.map(lane),
    shutdown: { timeout: duration(cfg.shutdown.timeoutMs) },
    cancel: { retention: duration(cfg.cancel.retentionMs) },
    deadLetters: { queueType: cfg.deadLetters.queueType },
    log: { level: cfg.log.level },
    // The token is never a config key: only where it is read from is shown.
    http: { host: cfg.http.host, port: cfg.http.port, ui: { enabled: cfg.http.ui.enabled, readOnly: cfg.http.ui.readOnly, tokenFile: cfg.http.ui.tokenFile } },
  };
}

function lane(l: LaneConfig): unknown {
  return {
    name: l.name,
    concurrency: l.concurrency,
    maxPriority: l.maxPriority,
    handler: l.httpHandler === null ? l.handler : { url: redactUrl(l.httpHandler.url), headers: headers(l.httpHandler.headers) },
    timeout: duration(l.timeoutMs),
    format: l.format,
    retry: retry(l.retry),
    partitions: l.partitions,
    queueType: l.queueType,
    workAhead: {
      enabled: l.workAhead.enabled,
      idle: duration(l.workAhead.idleMs),
      maxAdvance: duration(l.workAhead.maxAdvanceMs),
      maxRate: l.workAhead.maxRate,
    },
    rateLimit: l.rateLimit === null ? { max: null, per: null } : { max: l.rateLimit.max, per: duration(l.rateLimit.perMs) },
    bundle: { max: l.bundle.max, linger: duration(l.bundle.lingerMs), maxBytes: l.bundle.maxBytes },
    tolerance: tolerance(l.tolerance),
  };
}

function retry(r: RetryConfig): unknown {
  const b = r.backoff;
  return { maxAttempts: r.maxAttempts, backoff: { initial: duration(b.initialMs), factor: b.factor, max: duration(b.maxMs), jitter: b.jitter } };
}

/** Where each header comes from; a literal value is a secret like any other. */
function headers(sources: Readonly<Record<string, HeaderSource>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(sources)) {
    if ('env' in source) out[name] = { env: source.env };
    else if ('file' in source) out[name] = { file: source.file };
    else out[name] = MASK;
  }
  return out;
}

/** A fraction as a percentage ("2%"), the form the README uses; 0 stays 0. */
function tolerance(t: number): number | string {
  return t === 0 ? 0 : `${Number((t * 100).toPrecision(12))}%`;
}
