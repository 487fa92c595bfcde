/**
 * orbit's error hierarchy. Every error carries a stable `code` (for logs, metrics and
 * dead-letter headers) and an optional `cause`. Code decides by `instanceof`, never by
 * matching message text.
 */
export class OrbitError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The configuration is malformed; `path` names the offending key (e.g. `lanes[1].name`). */
export class ConfigError extends OrbitError {
  readonly path: string | undefined;

  constructor(message: string, options?: { path?: string; cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
    this.path = options?.path;
  }
}

/** Input to `publish` (API, CLI or JSON lines) is refused before anything is sent. */
export class InvalidMessageError extends OrbitError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'INVALID_MESSAGE', message, options);
  }
}

/** A delay beyond `(2^levels − 1) × unit`. */
export class DelayOutOfRangeError extends InvalidMessageError {
  constructor(message: string) {
    super(message, { code: 'DELAY_OUT_OF_RANGE' });
  }
}

/** The broker did not confirm a publish (nack, return, closed channel, timeout). */
export class PublishError extends OrbitError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'PUBLISH_FAILED', message, options);
  }
}

/** Broker connection or topology problems. */
export class BrokerError extends OrbitError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'BROKER_ERROR', message, options);
  }
}

/** The lane's handler module cannot be loaded or exports no function. */
export class HandlerLoadError extends OrbitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HANDLER_LOAD_FAILED', message, options);
  }
}

/**
 * Thrown by a handler to say "retrying will not help": the message goes straight to the
 * dead-letter queue.
 */
export class UnrecoverableError extends OrbitError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'UNRECOVERABLE', message, options);
  }
}

/** The handler ran past its lane's `timeout`. */
export class HandlerTimeoutError extends OrbitError {
  constructor(timeoutMs: number) {
    super('HANDLER_TIMEOUT', `handler did not settle within ${timeoutMs} ms`);
  }
}

/** The handler returned something that is not a valid outcome. */
export class BadOutcomeError extends OrbitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BAD_OUTCOME', message, options);
  }
}

/** A lane with `format: "json"` received a body that does not parse. */
export class BadBodyError extends OrbitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BAD_BODY', message, options);
  }
}

/** Returns a stable code for any thrown value. */
export function errorCode(err: unknown): string {
  return err instanceof OrbitError ? err.code : 'HANDLER_ERROR';
}

/** Returns a message for any thrown value, including non-Error throws. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
