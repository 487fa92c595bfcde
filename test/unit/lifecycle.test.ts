import { Lifecycle, runSteps } from '../../src/lifecycle';

/** A promise resolved or rejected from outside. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('Lifecycle', () => {
  it('runs doStart once for concurrent and repeated start() calls', async () => {
    const gate = deferred();
    const doStart = jest.fn(() => gate.promise);
    const life = new Lifecycle(doStart, jest.fn(async () => undefined));
    const calls = [life.start(), life.start(), life.start()];
    expect(doStart).toHaveBeenCalledTimes(1);
    expect(calls[1]).toBe(calls[0]);
    gate.resolve();
    await Promise.all(calls);
    await life.start();
    expect(doStart).toHaveBeenCalledTimes(1);
    expect(life.started).toBe(true);
    expect(life.stopped).toBe(false);
  });

  it('runs doStop once for concurrent and repeated stop() calls', async () => {
    const doStop = jest.fn(async () => undefined);
    const life = new Lifecycle(async () => undefined, doStop);
    await life.start();
    const a = life.stop();
    const b = life.stop();
    expect(b).toBe(a);
    await Promise.all([a, b, life.stop()]);
    expect(doStop).toHaveBeenCalledTimes(1);
    expect(life.started).toBe(false);
    expect(life.stopped).toBe(true);
  });

  it('stop waits for an in-flight start before stopping', async () => {
    const order: string[] = [];
    const gate = deferred();
    const life = new Lifecycle(
      async () => {
        order.push('start begins');
        await gate.promise;
        order.push('start ends');
      },
      async () => {
        order.push('stop');
      },
    );
    const started = life.start();
    const stopped = life.stop();
    await flush();
    expect(order).toEqual(['start begins']);
    gate.resolve();
    await Promise.all([started, stopped]);
    expect(order).toEqual(['start begins', 'start ends', 'stop']);
  });

  it('stop still releases resources after a failed start, and resolves', async () => {
    const doStop = jest.fn(async () => undefined);
    const life = new Lifecycle(async () => {
      throw new Error('broker down');
    }, doStop);
    await expect(life.start()).rejects.toThrow('broker down');
    await expect(life.stop()).resolves.toBeUndefined();
    expect(doStop).toHaveBeenCalledTimes(1);
  });

  it('stop without start runs doStop', async () => {
    const doStart = jest.fn(async () => undefined);
    const doStop = jest.fn(async () => undefined);
    const life = new Lifecycle(doStart, doStop);
    expect(life.started).toBe(false);
    await life.stop();
    expect(doStart).not.toHaveBeenCalled();
    expect(doStop).toHaveBeenCalledTimes(1);
  });

  it('start after stop rejects without calling doStart', async () => {
    const doStart = jest.fn(async () => undefined);
    const life = new Lifecycle(doStart, async () => undefined);
    await life.start();
    await life.stop();
    await expect(life.start()).rejects.toThrow('cannot start: already stopped');
    expect(doStart).toHaveBeenCalledTimes(1);
  });

  it('start while a stop is under way rejects', async () => {
    const gate = deferred();
    const doStart = jest.fn(async () => undefined);
    const life = new Lifecycle(doStart, () => gate.promise);
    const stopping = life.stop();
    await expect(life.start()).rejects.toThrow(/already stopped/);
    gate.resolve();
    await stopping;
    expect(doStart).not.toHaveBeenCalled();
  });

  it('a failed doStop rejects every stop() caller with its error, once', async () => {
    const doStop = jest.fn(async () => {
      throw new Error('close failed');
    });
    const life = new Lifecycle(async () => undefined, doStop);
    await expect(life.stop()).rejects.toThrow('close failed');
    await expect(life.stop()).rejects.toThrow('close failed');
    expect(doStop).toHaveBeenCalledTimes(1);
  });
});

describe('runSteps', () => {
  it('runs every step in order', async () => {
    const order: string[] = [];
    const onError = jest.fn();
    await runSteps(
      [
        ['a', async () => order.push('a')],
        ['b', async () => order.push('b')],
        ['c', async () => order.push('c')],
      ],
      onError,
    );
    expect(order).toEqual(['a', 'b', 'c']);
    expect(onError).not.toHaveBeenCalled();
  });

  it('waits for each step before the next', async () => {
    const order: string[] = [];
    await runSteps(
      [
        ['slow', async () => {
          await flush();
          order.push('slow done');
        }],
        ['next', async () => order.push('next')],
      ],
      () => undefined,
    );
    expect(order).toEqual(['slow done', 'next']);
  });

  it('runs the remaining steps when one throws, reports each failure, and rethrows the first', async () => {
    const first = new Error('consumers');
    const second = new Error('connection');
    const order: string[] = [];
    const onError = jest.fn();
    const run = runSteps(
      [
        ['stop consuming', async () => {
          order.push('stop consuming');
          throw first;
        }],
        ['drain', async () => order.push('drain')],
        ['close connection', async () => {
          order.push('close connection');
          throw second;
        }],
        ['close http', async () => order.push('close http')],
      ],
      onError,
    );
    await expect(run).rejects.toBe(first);
    expect(order).toEqual(['stop consuming', 'drain', 'close connection', 'close http']);
    expect(onError.mock.calls).toEqual([
      ['stop consuming', first],
      ['close connection', second],
    ]);
  });

  it('catches a step that throws synchronously', async () => {
    const onError = jest.fn();
    const later = jest.fn(async () => undefined);
    const err = new Error('sync');
    await expect(
      runSteps(
        [
          ['sync', () => {
            throw err;
          }],
          ['later', later],
        ],
        onError,
      ),
    ).rejects.toBe(err);
    expect(later).toHaveBeenCalledTimes(1);
    expect(onError).toHaveBeenCalledWith('sync', err);
  });

  it('tells how long each step took, a failed one too, in order', async () => {
    const done: [string, number][] = [];
    const run = runSteps(
      [
        ['slow', () => new Promise((resolve) => setTimeout(resolve, 60))],
        ['fails', async () => Promise.reject(new Error('x'))],
      ],
      () => undefined,
      (step, ms) => void done.push([step, ms]),
    );
    await expect(run).rejects.toThrow('x');
    expect(done.map(([step]) => step)).toEqual(['slow', 'fails']);
    expect(done[0]![1]).toBeGreaterThanOrEqual(50); // timers may fire a little early on some clocks
    expect(done[1]![1]).toBeGreaterThanOrEqual(0);
  });

  it('resolves for no steps', async () => {
    await expect(runSteps([], () => undefined)).resolves.toBeUndefined();
  });
});
