/**
 * One configuration problem, as both stages report it: the key it concerns and the full
 * sentence shown to the user. Carrying the key alongside the text means nothing ever has to
 * read it back out of the sentence.
 */
import { ConfigError } from '../errors';

export interface Problem {
  /** The key, e.g. `lanes[1].name`; undefined for the rare convict line that names none. */
  readonly path: string | undefined;
  readonly message: string;
}

/** Longest problem line kept whole: messages echo the bad value, which may be megabytes. */
const MAX_PROBLEM_CHARS = 500;

/** A problem line, cut to MAX_PROBLEM_CHARS with a note of how long it was. */
export function clipProblem(line: string): string {
  return line.length <= MAX_PROBLEM_CHARS ? line : `${line.slice(0, MAX_PROBLEM_CHARS)}… (${line.length} characters in all)`;
}

/** One ConfigError listing every problem, a line each; its `path` is the first problem's key. */
export function problemsError(problems: readonly Problem[]): ConfigError {
  return new ConfigError(problems.map((p) => clipProblem(p.message)).join('\n'), { path: problems[0]?.path });
}
