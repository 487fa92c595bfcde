import { inspect } from 'node:util';

/** What a secret prints as, in logs, `orbit config` and errors. */
export const MASK = '***';

/**
 * A secret value that prints as `***` wherever it is serialised: `JSON.stringify` (pino logs,
 * `redactConfig`, API responses) and `util.inspect` (console.log, jest diffs). Only `reveal()`
 * gives the value, so a config object passed to a logger whole cannot leak it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
    Object.freeze(this);
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return MASK;
  }

  toString(): string {
    return MASK;
  }

  [inspect.custom](): string {
    return MASK;
  }
}
