/**
 * Loading: gathers the sources (files and the environment), has stage 1 (`checkShape`) merge
 * and shape-check them, then hands over to stage 2 (`resolveConfig`).
 *
 * Precedence, rising: schema defaults < JSON config file < env file < environment < overrides.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import dotenv from 'dotenv';
import { ConfigError, errnoCode, errorMessage } from '../errors';
import { checkShape } from './shape';
import type { ConfigSources, ResolvedConfig } from './types';
import { resolveConfig } from './validate';

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
    const code = errnoCode(err);
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
    throw new ConfigError(`config file ${file} is not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const kind = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed;
    throw new ConfigError(`config file ${file} must hold a JSON object (got ${kind})`);
  }
  return parsed as Record<string, unknown>;
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
  const cwd = sources.cwd ?? process.cwd();

  const realEnv = definedOnly(sources.env ?? process.env);
  const envFileName = nonEmpty(sources.envFile) ?? nonEmpty(realEnv[ENV_FILE_ENV]);
  const fileEnv = envFileName === undefined ? {} : dotenv.parse(readSource('env file', resolve(cwd, envFileName)));
  // convict applies its `env` after every loaded file, which puts both env sources above the
  // JSON file; spreading real env last keeps it above the env file.
  const env: Record<string, string> = { ...fileEnv, ...realEnv };

  const configName = nonEmpty(sources.configFile) ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const configFile = configName === undefined ? null : resolve(cwd, configName);

  const raw = checkShape({ file: configFile === null ? null : readJsonObject(configFile), env, overrides: sources.overrides ?? {} });
  return resolveConfig(raw, { configFile, baseDir: configFile === null ? cwd : dirname(configFile), env });
}
