import type { Handler, Message, Outcome } from '../../src';

/** What a handler saw at the moment it started. */
export interface Run {
  readonly id: string;
  readonly lane: string;
  readonly runs: number;
  readonly attempt: number;
  readonly priority: number;
  readonly dueAt: number;
  /** Date.now() when the handler started. */
  readonly startedAt: number;
  readonly early: boolean;
  readonly redelivered: boolean;
  readonly body: string;
  readonly headers: Readonly<Record<string, unknown>>;
}

/**
 * Records every handler start, in order, across lanes. `wrap` turns a decision function
 * into a handler that records first and then decides the outcome.
 */
export class Recorder {
  readonly runs: Run[] = [];

  record(message: Message): Run {
    const run: Run = {
      id: message.id,
      lane: message.lane,
      runs: message.runs,
      attempt: message.attempt,
      priority: message.priority,
      dueAt: message.dueAt.getTime(),
      startedAt: Date.now(),
      early: message.early,
      redelivered: message.redelivered,
      body: message.body.toString('utf8'),
      headers: message.headers,
    };
    this.runs.push(run);
    return run;
  }

  wrap(decide: (message: Message, run: Run) => Outcome | Promise<Outcome> = () => undefined): Handler {
    return (message) => decide(message, this.record(message));
  }

  /** Runs grouped by message id, each group in start order. */
  byId(): Map<string, Run[]> {
    const out = new Map<string, Run[]>();
    for (const run of this.runs) {
      const list = out.get(run.id);
      if (list) list.push(run);
      else out.set(run.id, [run]);
    }
    return out;
  }

  get count(): number {
    return this.runs.length;
  }
}

/** Stacks cleanup steps and runs them newest first, never letting one failure skip the rest. */
export class Cleanup {
  private readonly steps: Array<() => Promise<unknown>> = [];

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

