/**
 * orbit's error hierarchy. Every error carries a stable `code` (for logs, metrics and
 * dead-letter headers) and an optional `cause`. Code decides by class, never by matching
 * message text.
 *
 * Deciding by class must not depend on module identity: a handler outside this package
 * may resolve its own copy of orbit (installed beside it, a second `node_modules`, a
 * bundler), and that copy's `UnrecoverableError` is a different class, so `instanceof`
 * against ours is false. The classes a handler can throw to change what happens to its
 * message are therefore also recognised by a *registered* symbol on their prototype
 * (`Symbol.for` returns the same symbol to every copy in the process), read through
 * {@link isOrbitError} and {@link isUnrecoverable}:
 *
 * - `Symbol.for('orbit.error')`: any `OrbitError`; its `code` property is the stable code.
 * - `Symbol.for('orbit.error.unrecoverable')`: an `UnrecoverableError` — dead-letter now.
 * - `Symbol.for('orbit.error.bad-body')`: a `BadBodyError` — dead-letter now.
 *
 * A brand rather than duck-typing on `code`: `UnrecoverableError` takes any code (a
 * handler's own `MY_CODE`), and plain errors from other libraries carry `code` too (Node's
 * `ECONNRESET`), so a code alone cannot say "do not retry". These symbol names are part of
 * the public contract: renaming one breaks handlers built against an older copy.
 * `instanceof` keeps working for code that shares orbit's copy.
 */
const ORBIT_ERROR = Symbol.for('orbit.error');
const UNRECOVERABLE = Symbol.for('orbit.error.unrecoverable');
const BAD_BODY = Symbol.for('orbit.error.bad-body');

export class OrbitError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
brand(OrbitError, ORBIT_ERROR);

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
  /**
   * The input line it concerns (JSON lines), when there is one. The message names it too;
   * this is for code, which must not read it back out of the text.
   */
  readonly line: number | undefined;

  constructor(message: string, options?: { cause?: unknown; code?: string; line?: number }) {
    super(options?.code ?? 'INVALID_MESSAGE', message, options);
    this.line = options?.line;
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
brand(UnrecoverableError, UNRECOVERABLE);

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
brand(BadBodyError, BAD_BODY);

/**
 * Marks a class's instances with a registered symbol: a non-enumerable, read-only
 * prototype property, so it costs nothing per instance, is inherited by subclasses (a
 * handler's `class Gone extends UnrecoverableError`) and never shows in logs or JSON.
 */
function brand(cls: abstract new (...args: never[]) => Error, symbol: symbol): void {
  Object.defineProperty(cls.prototype, symbol, { value: true, enumerable: false, writable: false, configurable: false });
}

function hasBrand(value: unknown, symbol: symbol): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[symbol] === true;
}

/** An `OrbitError` from this copy of orbit or any other one loaded in the process. */
export function isOrbitError(value: unknown): value is OrbitError {
  return value instanceof OrbitError || (hasBrand(value, ORBIT_ERROR) && typeof (value as { code?: unknown }).code === 'string');
}

/** An `UnrecoverableError` from this copy of orbit or any other one: retrying will not help. */
export function isUnrecoverable(value: unknown): value is UnrecoverableError {
  return value instanceof UnrecoverableError || (hasBrand(value, UNRECOVERABLE) && isOrbitError(value));
}

/** A `BadBodyError` from this copy of orbit or any other one. */
export function isBadBody(value: unknown): value is BadBodyError {
  return value instanceof BadBodyError || (hasBrand(value, BAD_BODY) && isOrbitError(value));
}

/** Returns a stable code for any thrown value (an `OrbitError` of any copy keeps its own). */
export function errorCode(err: unknown): string {
  return isOrbitError(err) ? err.code : 'HANDLER_ERROR';
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

/**
 * The `code` a Node system error (`ENOENT`, `EADDRINUSE`) or an amqplib error (a reply code
 * such as 404) carries, read in one place instead of a cast at every call site.
 */
export function errnoCode(err: unknown): string | number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' || typeof code === 'number' ? code : undefined;
}

/**
 * The broker refused the connection itself: the login (`ACCESS_REFUSED`) or the vhost
 * (`VHOST_NOT_ALLOWED`). Retrying with the same settings cannot heal it, so a first connect
 * fails at once; it is configuration, so the CLI exits 2 (see `exitCodeFor`).
 */
export class BrokerRefusedError extends BrokerError {
  constructor(code: 'ACCESS_REFUSED' | 'VHOST_NOT_ALLOWED', message: string, options?: { cause?: unknown }) {
    super(message, { ...options, code });
  }
}

/** A command that only looks found no namespace of that name on the broker (it declares none). */
export class NamespaceNotFoundError extends ConfigError {
  override readonly code: string = 'NAMESPACE_NOT_FOUND';

  constructor(message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options);
  }
}
