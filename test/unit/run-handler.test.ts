/**
 * runHandler without a broker: every way a handler call can end becomes a result, the
 * timeout aborts the signal, and the context's signal and logger are made only when read.
 */
import { HandlerTimeoutError } from '../../src/errors';
import type { Logger } from '../../src/logging/logger';
import type { HandlerContext, Message } from '../../src/worker/handler-types';
import { runHandler } from '../../src/worker/run-handler';
import { timerFloorMs } from '../helpers/wait';

const message = { id: 'm1' } as unknown as Message;
const noLogger = (): Logger => {
  throw new Error('the logger was made although the handler never read it');
};

describe('runHandler', () => {
  test('a returned value, a thrown error and a rejection each become a result', async () => {
    await expect(runHandler(() => ({ done: true }), message, noLogger, 1000)).resolves.toEqual({ ok: true, value: { done: true } });
    const thrown = new Error('sync');
    await expect(runHandler(() => { throw thrown; }, message, noLogger, 1000)).resolves.toEqual({ ok: false, error: thrown });
    const rejected = new Error('async');
    await expect(runHandler(async () => { throw rejected; }, message, noLogger, 1000)).resolves.toEqual({ ok: false, error: rejected });
  });

  test('a handler past its timeout fails with HandlerTimeoutError and its signal is aborted', async () => {
    let ctx: HandlerContext | undefined;
    const started = Date.now();
    const result = await runHandler(
      (_m, c) => {
        ctx = c;
        // Rejects on abort: the timeout result must win anyway.
        return new Promise((_resolve, reject) => c.signal.addEventListener('abort', () => reject(new Error('aborted'))));
      },
      message,
      noLogger,
      50,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(timerFloorMs(50));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toBeInstanceOf(HandlerTimeoutError);
    expect(ctx!.signal.aborted).toBe(true);
    expect(ctx!.signal.reason).toBeInstanceOf(HandlerTimeoutError);
  });

  test('a signal first read after the timeout is already aborted', async () => {
    let ctx: HandlerContext | undefined;
    let finish: (() => void) | undefined;
    const result = await runHandler(
      (_m, c) => {
        ctx = c;
        return new Promise<void>((resolve) => (finish = resolve));
      },
      message,
      noLogger,
      20,
    );
    finish!();
    expect(!result.ok && result.error).toBeInstanceOf(HandlerTimeoutError);
    expect(ctx!.signal.aborted).toBe(true);
  });

  test('the logger is made once, on first read, and a result after the timeout is ignored', async () => {
    let made = 0;
    const logger = { info: () => undefined } as unknown as Logger;
    const result = await runHandler(
      (_m, c) => {
        const { logger: a } = c;
        expect(c.logger).toBe(a);
        return { done: true };
      },
      message,
      () => {
        made++;
        return logger;
      },
      1000,
    );
    expect(made).toBe(1);
    expect(result).toEqual({ ok: true, value: { done: true } });
  });
});
