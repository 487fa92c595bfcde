/**
 * Idempotent start/stop (the pg-boss pattern): concurrent or repeated calls share the one
 * in-flight promise, and stop waits for a start that is still under way.
 */
export class Lifecycle {
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly doStart: () => Promise<void>,
    private readonly doStop: () => Promise<void>,
  ) {}

  get started(): boolean {
    return this.starting !== undefined && this.stopping === undefined;
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  start(): Promise<void> {
    if (this.stopping) return Promise.reject(new Error('cannot start: already stopped'));
    this.starting ??= this.doStart();
    return this.starting;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // A failed start still has resources to release; its error was reported by start().
      await this.starting?.catch(() => undefined);
      await this.doStop();
    })();
    return this.stopping;
  }
}

/**
 * Runs shutdown steps in order, each in its own try/catch so one failure does not skip
 * the rest (BullMQ's `close`); the first error is rethrown at the end. `onDone` hears how long
 * each step took, failed or not (a stop that outlasts its budget says which step held it).
 */
export async function runSteps(
  steps: ReadonlyArray<readonly [string, () => Promise<unknown>]>,
  onError: (step: string, err: unknown) => void,
  onDone?: (step: string, ms: number) => void,
): Promise<void> {
  let first: unknown;
  for (const [name, step] of steps) {
    const started = Date.now();
    try {
      await step();
    } catch (err) {
      onError(name, err);
      first ??= err;
    }
    onDone?.(name, Date.now() - started);
  }
  if (first !== undefined) throw first;
}
