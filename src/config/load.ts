/**
 * Loading: gathers the sources, lets convict merge and type-check them (stage 1), then
 * hands over to `resolveConfig` (stage 2).
 *
 * Precedence, rising: schema defaults < JSON config file < env file < environment < overrides.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import convict from 'convict';
import dotenv from 'dotenv';
import { ConfigError } from '../errors';
import {
  checkLanes,
  type LaneOverride,
  parseLaneOverride,
  checkNesting,
  configSchema,
  hasProtoKey,
  hintUndeclared,
  pathOfProblem,
  registerFormats,
  schemaLeafPaths,
  splitConvictMessage,
  type RawConfig,
} from './schema';
import type { ConfigSources, ResolvedConfig } from './types';
import { clipProblem, resolveConfig } from './validate';

/** Environment variables that point at the other sources rather than set keys. */
export const CONFIG_FILE_ENV = 'ORBIT_CONFIG';
export const ENV_FILE_ENV = 'ORBIT_ENV_FILE';

/** Empty means unset: compose files and shells often export `VAR=` to clear a value. */
function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function definedOnly(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined) out[key] = value;
  return out;
}

/** Reads a source file the user named, turning fs errors into a ConfigError that names it. */
function readSource(kind: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`;
    throw new ConfigError(`${kind} ${file} ${reason}`, { cause: err });
  }
}

function readJsonObject(file: string): Record<string, unknown> {
  // Editors on Windows may save a BOM, which JSON.parse rejects.
  const text = readSource('config file', file).replace(/^\uFEFF/, '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`config file ${file} is not valid JSON: ${reason}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const kind = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed;
    throw new ConfigError(`config file ${file} must hold a JSON object (got ${kind})`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * JSON text for `lanes` (ORBIT_LANES, `--set lanes=…`) reaches convict through the format's
 * coerce, and convict's copy drops a `"__proto__"` key without a word, so it is refused here,
 * as it is in a config file. Text that does not parse is left for the format to report.
 */
function rejectProtoKeys(source: string, text: string | undefined, problems: string[]): void {
  if (text === undefined) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return;
  }
  if (typeof parsed === 'object' && parsed !== null && hasProtoKey(parsed)) {
    problems.push(`lanes: a "__proto__" key is not allowed (found in ${source})`);
  }
}

function problemsError(problems: readonly string[]): ConfigError {
  const first = problems[0] ?? '';
  return new ConfigError(problems.map(clipProblem).join('\n'), { path: pathOfProblem(first) });
}

/**
 * Loads, validates and resolves orbit's configuration.
 *
 * Sources, in rising precedence: schema defaults; the JSON file `sources.configFile` (else
 * `ORBIT_CONFIG`); the dotenv file `sources.envFile` (else `ORBIT_ENV_FILE`); the environment
 * `sources.env` (else `process.env`); `sources.overrides`, dotted keys with string values as
 * given on a command line (`{ 'delay.unit': '1m', lanes: '[{"name":"fast"}]' }`). Relative
 * file names resolve against `sources.cwd` (else `process.cwd()`); relative paths inside the
 * configuration resolve against the config file's directory. `ORBIT_CONFIG` may also come
 * from the env file, and so may the variables that HTTP handler headers name (`{ "env": "VAR" }`).
 *
 * @returns the deeply frozen configuration, durations in milliseconds, paths absolute
 * @throws ConfigError when a file is missing or malformed, an override names no key, or any
 *   value is invalid; the message lists every problem, each naming its key (`lanes[0].foo`)
 */
export function loadConfig(sources: ConfigSources = {}): ResolvedConfig {
  try {
    return load(sources);
  } catch (err) {
    // convict copies and walks values recursively: absurdly deep input (a file, ORBIT_LANES,
    // --set lanes=…) overflows the stack. That is bad configuration, not a crash.
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      throw new ConfigError('configuration is nested too deeply to read (maximum call stack size exceeded)', { cause: err });
    }
    throw err;
  }
}

function load(sources: ConfigSources): ResolvedConfig {
  registerFormats();
  const cwd = sources.cwd ?? process.cwd();

  const realEnv = definedOnly(sources.env ?? process.env);
  const envFileName = nonEmpty(sources.envFile) ?? nonEmpty(realEnv[ENV_FILE_ENV]);
  const fileEnv = envFileName === undefined ? {} : dotenv.parse(readSource('env file', resolve(cwd, envFileName)));
  // convict applies its `env` after every loaded file, which puts both env sources above the
  // JSON file; spreading real env last keeps it above the env file.
  const env: Record<string, string> = { ...fileEnv, ...realEnv };

  const configName = nonEmpty(sources.configFile) ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const configFile = configName === undefined ? null : resolve(cwd, configName);

  const problems: string[] = [];
  // `args: []` because convict would otherwise parse process.argv (the CLI owns that).
  const config = convict<RawConfig>(configSchema, { env, args: [] });
  if (configFile !== null) config.load(checkNesting(configSchema, readJsonObject(configFile), '', problems));

  const overrides = sources.overrides ?? {};
  rejectProtoKeys('ORBIT_LANES', env['ORBIT_LANES'], problems);
  rejectProtoKeys('--set lanes', overrides['lanes'], problems);
  const leafPaths = new Set(schemaLeafPaths(configSchema));
  const laneOverrides: LaneOverride[] = [];
  for (const [path, value] of Object.entries(overrides)) {
    const inLane = parseLaneOverride(path, value);
    if (inLane !== undefined) {
      if ('problem' in inLane) problems.push(inLane.problem);
      else laneOverrides.push(inLane);
      continue;
    }
    // convict's `set` would happily create unknown keys, or throw a bare TypeError when the
    // path runs through a value; only settable keys are accepted.
    if (!leafPaths.has(path)) {
      throw new ConfigError(`override ${JSON.stringify(path)} does not name a configuration key`, { path });
    }
    config.set(path, value);
  }

  try {
    config.validate({ allowed: 'strict' });
  } catch (err) {
    const lines = splitConvictMessage(err instanceof Error ? err.message : String(err));
    problems.push(...lines.map((line) => hintUndeclared(line, leafPaths)));
  }
  const raw = config.getProperties();
  let lanes = raw.lanes;
  if (Array.isArray(lanes)) {
    const checked = checkLanes(lanes, laneOverrides);
    problems.push(...checked.problems);
    lanes = checked.lanes;
  }
  if (problems.length > 0) throw problemsError(problems);

  return resolveConfig(
    { ...raw, lanes },
    { configFile, baseDir: configFile === null ? cwd : dirname(configFile), env },
  );
}
