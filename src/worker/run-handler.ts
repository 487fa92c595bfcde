import { HandlerTimeoutError } from '../errors';
import type { Logger } from '../logging/logger';
import type { HandlerResult } from './decide-outcome';
import type { Handler, HandlerContext, Message } from './handler-types';

/**
 * Runs one handler call, bounded by the lane's timeout. On timeout the signal is aborted
 * and the attempt counts as failed at once — whether or not the handler honours the
 * signal — so one stuck call can never hold a message forever. Never throws.
 *
 * The AbortSignal and the child logger are made only when the handler first reads them:
 * on Node 20 creating a signal costs a few µs, which at tens of thousands of messages a
 * second is a measurable share of the hot path (docs/BENCHMARKS.md).
 * @param logger makes the handler's logger (bound to the message) when first asked for.
 */
export function runHandler(handler: Handler, message: Message, logger: () => Logger, timeoutMs: number): Promise<HandlerResult> {
  return new Promise<HandlerResult>((resolve) => new HandlerRun(handler, message, logger, timeoutMs, resolve));
}

/**
 * One call's state, and the handler's context (`signal`, `logger`) as prototype getters:
 * an object literal with getters and closures per message was a visible share of a bundled
 * lane's profile.
 */
class HandlerRun implements HandlerContext {
  #settled = false;
  #controller: AbortController | undefined;
  #timeoutError: HandlerTimeoutError | undefined;
  #child: Logger | undefined;
  readonly #logger: () => Logger;
  readonly #resolve: (result: HandlerResult) => void;
  readonly #timer: NodeJS.Timeout;

  constructor(handler: Handler, message: Message, logger: () => Logger, timeoutMs: number, resolve: (result: HandlerResult) => void) {
    this.#logger = logger;
    this.#resolve = resolve;
    this.#timer = setTimeout(() => {
      const error = (this.#timeoutError = new HandlerTimeoutError(timeoutMs));
      // Settle before aborting: a handler that rejects on abort must not win the race.
      this.#finish({ ok: false, error });
      this.#controller?.abort(error);
    }, timeoutMs);
    let returned: unknown;
    try {
      returned = handler(message, this);
    } catch (error) {
      this.#finish({ ok: false, error });
      return;
    }
    Promise.resolve(returned).then(
      (value) => this.#finish({ ok: true, value }),
      (error: unknown) => this.#finish({ ok: false, error }),
    );
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#timeoutError) this.#controller.abort(this.#timeoutError);
    }
    return this.#controller.signal;
  }

  get logger(): Logger {
    return (this.#child ??= this.#logger());
  }

  #finish(result: HandlerResult): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#resolve(result);
  }
}
