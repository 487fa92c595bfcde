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
  return new Promise<HandlerResult>((resolve) => {
    let settled = false;
    let controller: AbortController | undefined;
    let timeoutError: HandlerTimeoutError | undefined;
    let child: Logger | undefined;
    const finish = (result: HandlerResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      timeoutError = new HandlerTimeoutError(timeoutMs);
      // Settle before aborting: a handler that rejects on abort must not win the race.
      finish({ ok: false, error: timeoutError });
      controller?.abort(timeoutError);
    }, timeoutMs);
    const ctx: HandlerContext = {
      get signal() {
        if (!controller) {
          controller = new AbortController();
          if (timeoutError) controller.abort(timeoutError);
        }
        return controller.signal;
      },
      get logger() {
        return (child ??= logger());
      },
    };
    let returned: unknown;
    try {
      returned = handler(message, ctx);
    } catch (error) {
      finish({ ok: false, error });
      return;
    }
    Promise.resolve(returned).then(
      (value) => finish({ ok: true, value }),
      (error: unknown) => finish({ ok: false, error }),
    );
  });
}
