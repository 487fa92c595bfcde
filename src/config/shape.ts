/**
 * Stage 1 of configuration: shape. Merges the sources with convict (which owns types,
 * defaults and environment variable names, see `schema.ts`), checks what convict cannot
 * (nesting, `__proto__` keys, each lane, HTTP handlers in their object form) and reports
 * every problem as a `Problem`. Value ranges and relations between keys are stage 2
 * (`validate.ts`).
 *
 * convict reports problems as text only; `convictProblems` is the one place that reads it.
 */
import convict from 'convict';
import { ConfigError, errorMessage } from '../errors';
import { problemsError, type Problem } from './problem';
import { configSchema, LANES, laneSchema, registerFormats, type RawConfig, type RawHeaderValue, type RawHttpHandler, type RawLane } from './schema';

/** What stage 1 reads: everything already gathered from files and the environment. */
export interface ShapeInput {
  /** The JSON config file's object, or null when there is none. */
  readonly file: Record<string, unknown> | null;
  /** Environment variables, the env file's included, for convict's `env` keys. */
  readonly env: Readonly<Record<string, string>>;
  /** Dotted keys with text values, as given on a command line. */
  readonly overrides: Readonly<Record<string, string>>;
}

/**
 * Merges and shape-checks the sources.
 *
 * @returns every key present and of the right type, values unchecked (stage 2's)
 * @throws ConfigError listing every problem, or naming an override that is no key
 */
export function checkShape(input: ShapeInput): RawConfig {
  try {
    return merge(input);
  } catch (err) {
    // convict copies, flattens and prints values recursively: absurdly deep input (a file,
    // ORBIT_LANES, --set lanes=…) overflows the stack. With values this small, that is the
    // only RangeError these walks raise, so the class decides, not the message text.
    if (err instanceof RangeError) {
      throw new ConfigError('configuration is nested too deeply to read (maximum call stack size exceeded)', { cause: err });
    }
    throw err;
  }
}

const LEAF_PATHS: ReadonlySet<string> = new Set(schemaLeafPaths(configSchema));
const LANE_LEAF_PATHS: ReadonlySet<string> = new Set(schemaLeafPaths(laneSchema));

function merge({ file, env, overrides }: ShapeInput): RawConfig {
  registerFormats();
  const problems: Problem[] = [];
  // `args: []` because convict would otherwise parse process.argv (the CLI owns that).
  const config = convict<RawConfig>(configSchema, { env, args: [] });
  if (file !== null) config.load(checkNesting(configSchema, file, '', problems));

  rejectProtoKeys('ORBIT_LANES', env['ORBIT_LANES'], problems);
  rejectProtoKeys('--set lanes', overrides['lanes'], problems);
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
    if (!LEAF_PATHS.has(path)) {
      throw new ConfigError(`override ${JSON.stringify(path)} does not name a configuration key`, { path });
    }
    config.set(path, value);
  }

  try {
    config.validate({ allowed: 'strict' });
  } catch (err) {
    problems.push(...convictProblems(err, { paths: LEAF_PATHS, base: '' }));
  }
  const raw = config.getProperties();
  let lanes = raw.lanes;
  if (Array.isArray(lanes)) {
    const checked = checkLanes(lanes, laneOverrides);
    problems.push(...checked.problems);
    lanes = checked.lanes;
  }
  if (problems.length > 0) throw problemsError(problems);
  return { ...raw, lanes };
}

/** Every key of a schema that holds a value (not a group), in dotted form. */
function schemaLeafPaths(schema: object, prefix = ''): string[] {
  const paths: string[] = [];
  for (const [key, node] of Object.entries(schema)) {
    const path = prefix + key;
    if (typeof node === 'object' && node !== null && !Array.isArray(node) && !('default' in node)) {
      paths.push(...schemaLeafPaths(node, `${path}.`));
    } else {
      paths.push(path);
    }
  }
  return paths;
}

/** The keys of the schema a path lies in, for the `Ms` hint; `base` is the schema's own path. */
interface Leaves {
  readonly paths: ReadonlySet<string>;
  /** `''` for the whole configuration, `lanes[i].` for one lane. */
  readonly base: string;
}

const PARAM_LINE = /^configuration param '([^']*)'/;
const UNDECLARED_LINE = /^configuration param '([^']*)' not declared in the schema$/;
const KEYED_LINE = /^([^\s:']+): /;

/**
 * The problems in a convict error: one line each, naming its key as `configuration param
 * 'key' …` or `key: …`. The one place that reads convict's text; keys are given `base`.
 */
function convictProblems(err: unknown, leaves: Leaves): Problem[] {
  const { base } = leaves;
  return errorMessage(err)
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line): Problem => {
      const undeclared = UNDECLARED_LINE.exec(line)?.[1];
      if (undeclared !== undefined) return notDeclared(base + undeclared, leaves);
      const param = PARAM_LINE.exec(line)?.[1];
      if (param !== undefined) return { path: base + param, message: line.replace(PARAM_LINE, () => `configuration param '${base}${param}'`) };
      const keyed = KEYED_LINE.exec(line)?.[1];
      if (keyed !== undefined) return { path: base + keyed, message: base + line };
      if (base === '') return { path: undefined, message: line };
      const at = base.slice(0, -1);
      return { path: at, message: `${at}: ${line}` };
    });
}

/**
 * A key the schema does not have. A key with an `Ms` suffix whose stem is a duration key
 * (`timeoutMs`, `workAhead.idleMs`) gets a hint: the resolved config uses such names, the
 * file does not.
 */
function notDeclared(path: string, leaves?: Leaves): Problem {
  const message = `configuration param '${path}' not declared in the schema`;
  if (leaves === undefined || !path.startsWith(leaves.base) || !path.endsWith('Ms')) return { path, message };
  const stem = path.slice(0, -2);
  if (!leaves.paths.has(stem.slice(leaves.base.length))) return { path, message };
  return { path, message: `${message} (did you mean '${stem}'? It takes a duration such as "5s" or 5000)` };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether a schema node is a group of keys rather than a value (convict's own test). */
function isGroup(node: unknown): node is Record<string, unknown> {
  return isPlainObject(node) && !('default' in node);
}

/**
 * Checks the one thing convict cannot report itself: the nesting. convict throws a bare
 * TypeError on an object two levels deep under a value key (`{"namespace": {"a": {"b": 1}}}`)
 * and reports a group given as `5` or `null` as its keys "missing, did you override its
 * parent?". Offending values are dropped from the returned copy (so convict checks the rest)
 * and reported by path. Unknown keys are left to convict's strict mode.
 *
 * @param schema - a convict schema (or group of one)
 * @param value - the matching part of the input, already known to be a plain object
 * @param prefix - path of `value`, ending with a dot, or empty at the top
 * @param leaves - for the `Ms` hint on undeclared keys (given inside lanes only)
 */
function checkNesting(schema: object, value: Record<string, unknown>, prefix: string, problems: Problem[], leaves?: Leaves): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    // Own keys only: `schema['__proto__']` or `schema['constructor']` are not schema nodes.
    const node = Object.prototype.hasOwnProperty.call(schema, key) ? (schema as Record<string, unknown>)[key] : undefined;
    const path = prefix + key;
    if (isGroup(node)) {
      if (!isPlainObject(child)) {
        problems.push({ path, message: `${path}: must be an object (got ${describe(child)})` });
        continue;
      }
      out[key] = checkNesting(node, child, `${path}.`, problems, leaves);
    } else if (node === undefined && (isPlainObject(child) || key === '__proto__')) {
      // An undeclared group is reported here, not handed to convict: convict walks it
      // recursively, building every path string, so deep input took O(depth²) time and then
      // overflowed the stack (a RangeError instead of a ConfigError). And `out.__proto__ = x`
      // would not copy a `__proto__` key but swallow it (or replace out's prototype).
      problems.push(notDeclared(path, leaves));
    } else if (node !== undefined && isPlainObject(child)) {
      const lanes = isPlainObject(node) && node['format'] === LANES;
      problems.push({ path, message: `${path}: ${lanes ? 'must be a JSON array of lane objects (got an object)' : 'must be a single value, not an object'}` });
    } else if (typeof child === 'object' && child !== null && hasProtoKey(child)) {
      // convict's copy of the value would drop the key silently (e.g. inside `lanes`).
      problems.push({ path, message: `${path}: a "__proto__" key is not allowed (found inside this value)` });
    } else {
      out[key] = child;
    }
  }
  return out;
}

/** Whether an own `__proto__` key (JSON.parse makes them) occurs anywhere in `value`; iterative, so depth is no problem. */
function hasProtoKey(value: object): boolean {
  const stack: unknown[] = [value];
  for (let visited = 0; stack.length > 0 && visited < 1_000_000; visited++) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (const c of v) stack.push(c);
      continue;
    }
    if (Object.prototype.hasOwnProperty.call(v, '__proto__')) return true;
    for (const c of Object.values(v)) stack.push(c);
  }
  return false;
}

/**
 * JSON text for `lanes` (ORBIT_LANES, `--set lanes=…`) reaches convict through the format's
 * coerce, and convict's copy drops a `"__proto__"` key without a word, so it is refused here,
 * as it is in a config file. Text that does not parse is left for the format to report.
 */
function rejectProtoKeys(source: string, text: string | undefined, problems: Problem[]): void {
  if (text === undefined) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return;
  }
  if (typeof parsed === 'object' && parsed !== null && hasProtoKey(parsed)) {
    problems.push({ path: 'lanes', message: `lanes: a "__proto__" key is not allowed (found in ${source})` });
  }
}

/** HTTP header names are RFC 9110 tokens. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE_FORMS = 'must be a string, { "env": "VAR" } or { "file": "path" }';

/** One header value's shape; the value itself never appears in a message (it may be a secret). */
function checkHeaderValue(value: unknown, path: string, problems: Problem[]): RawHeaderValue | undefined {
  if (typeof value === 'string') return value;
  if (!isPlainObject(value)) {
    problems.push({ path, message: `${path}: ${HEADER_VALUE_FORMS} (got ${describe(value)})` });
    return undefined;
  }
  const keys = Object.keys(value);
  const kind = keys[0];
  if (keys.length !== 1 || (kind !== 'env' && kind !== 'file')) {
    const got = keys.length === 0 ? 'an empty object' : `an object with ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
    problems.push({ path, message: `${path}: ${HEADER_VALUE_FORMS} (got ${got})` });
    return undefined;
  }
  const source = value[kind];
  if (typeof source !== 'string' || source.trim() === '') {
    const what = kind === 'env' ? 'an environment variable name' : 'a file path';
    problems.push({ path: `${path}.${kind}`, message: `${path}.${kind}: must be ${what} (got ${typeof source === 'string' ? 'an empty string' : describe(source)})` });
    return undefined;
  }
  return kind === 'env' ? { env: source } : { file: source };
}

/**
 * `handler` in its object form: known keys, types, header names and value forms. The URL's
 * scheme and syntax are stage 2 (`resolveConfig`), as is reading `{ env }`/`{ file }`.
 *
 * @param at - the key's path, e.g. `lanes[0].handler`
 * @returns a clean copy, or undefined when there were problems (added to `problems`)
 */
function checkHttpHandler(value: Record<string, unknown>, at: string, problems: Problem[]): RawHttpHandler | undefined {
  const before = problems.length;
  for (const key of Object.keys(value)) {
    if (key !== 'url' && key !== 'headers') problems.push(notDeclared(`${at}.${key}`));
  }
  const { url, headers } = value;
  if (url === undefined || url === null) problems.push({ path: `${at}.url`, message: `${at}.url: is required` });
  else if (typeof url !== 'string') problems.push({ path: `${at}.url`, message: `${at}.url: must be a string (got ${describe(url)})` });

  const checked: Record<string, RawHeaderValue> = {};
  if (headers !== undefined && headers !== null) {
    const path = `${at}.headers`;
    if (!isPlainObject(headers)) {
      problems.push({ path, message: `${path}: must be an object of header name → value (got ${describe(headers)})` });
    } else {
      const seen = new Map<string, string>();
      for (const [name, headerValue] of Object.entries(headers)) {
        if (!HEADER_NAME.test(name)) {
          problems.push({ path, message: `${path}: ${JSON.stringify(name)} is not a valid HTTP header name (letters, digits and !#$%&'*+.^_\`|~-)` });
          continue;
        }
        const lower = name.toLowerCase();
        const first = seen.get(lower);
        if (first !== undefined) {
          problems.push({ path, message: `${path}: ${JSON.stringify(first)} and ${JSON.stringify(name)} name the same header (names ignore case)` });
          continue;
        }
        seen.set(lower, name);
        const resolved = checkHeaderValue(headerValue, `${path}.${name}`, problems);
        if (resolved !== undefined) checked[name] = resolved;
      }
    }
  }
  if (problems.length > before || typeof url !== 'string') return undefined;
  return { url, headers: checked };
}

/** Group keys of a lane that may be null, meaning "not given": defaults (or inheritance) apply. */
const NULLABLE_GROUPS = ['retry', 'rateLimit', 'bundle'] as const;

/**
 * Rewrites a lane into what convict can check, and takes out what it cannot:
 * - `"retry": null` (or `"backoff": null`) reads naturally as "inherit everything", and
 *   `"rateLimit": null` / `"bundle": null` as "none" / "defaults"; convict would report each key
 *   under them as missing, so they are dropped;
 * - `"workAhead": false` (or `true`) is short for `{ "enabled": false }`;
 * - `handler` in its object form is checked here, since convict cannot hold objects in a value.
 */
function normalizeLane(
  lane: Record<string, unknown>,
  at: string,
  problems: Problem[],
): { lane: Record<string, unknown>; httpHandler: RawHttpHandler | undefined } {
  const out: Record<string, unknown> = { ...lane };
  for (const key of NULLABLE_GROUPS) if (out[key] === null) delete out[key];
  const retry = out['retry'];
  if (isPlainObject(retry) && retry['backoff'] === null) {
    const { backoff: _inherit, ...retryRest } = retry;
    out['retry'] = retryRest;
  }

  const workAhead = out['workAhead'];
  if (typeof workAhead === 'boolean') {
    out['workAhead'] = { enabled: workAhead };
  } else if (workAhead === null) {
    problems.push({ path: `${at}.workAhead`, message: `${at}.workAhead: must be an object, or false to turn work-ahead off (got null)` });
    delete out['workAhead'];
  }

  let httpHandler: RawHttpHandler | undefined;
  const handler = out['handler'];
  if (isPlainObject(handler)) {
    httpHandler = checkHttpHandler(handler, `${at}.handler`, problems);
    delete out['handler'];
  }
  return { lane: out, httpHandler };
}

/**
 * A `--set` aimed inside one lane: `lanes[0].timeout=5s` or, by name, `lanes.fast.timeout=5s`.
 * Lanes are one array-valued key to convict, so these are applied per lane, in `checkLanes`.
 */
interface LaneOverride {
  /** The lane, by index or by name. */
  readonly lane: number | string;
  /** A key of one lane, dotted (`retry.maxAttempts`). */
  readonly key: string;
  readonly value: string;
  /** As given on the command line, for messages. */
  readonly path: string;
}

const LANE_OVERRIDE = /^lanes(?:\[(\d+)\]|\.([A-Za-z0-9_-]+))\.(.+)$/;

/** The lane override `path` asks for, or undefined when it is not one. */
function parseLaneOverride(path: string, value: string): LaneOverride | { problem: Problem } | undefined {
  const m = LANE_OVERRIDE.exec(path);
  if (!m) return undefined;
  const key = m[3]!;
  if (!LANE_LEAF_PATHS.has(key)) {
    return { problem: { path, message: `${path}: "${key}" is not a lane key (lane keys: ${[...LANE_LEAF_PATHS].join(', ')})` } };
  }
  return { lane: m[1] === undefined ? m[2]! : Number(m[1]), key, value, path };
}

/**
 * Validates each lane against `laneSchema` (one small convict instance per element, as the
 * convict docs suggest for arrays), applies the lane overrides and the lane defaults.
 *
 * @returns the lanes with defaults, and the problems, each naming `lanes[i].key`
 */
function checkLanes(lanes: readonly unknown[], overrides: readonly LaneOverride[]): { lanes: RawLane[]; problems: Problem[] } {
  const problems: Problem[] = [];
  for (const o of overrides) {
    const found = typeof o.lane === 'number' ? o.lane < lanes.length : lanes.some((l) => isPlainObject(l) && l['name'] === o.lane);
    if (!found) {
      const which = typeof o.lane === 'number' ? `at index ${o.lane}` : `named "${o.lane}"`;
      problems.push({ path: o.path, message: `${o.path}: there is no lane ${which} (${lanes.length} configured)` });
    }
  }
  const out: RawLane[] = [];
  lanes.forEach((element, i) => {
    const at = `lanes[${i}]`;
    if (!isPlainObject(element)) {
      problems.push({ path: at, message: `${at}: must be an object (got ${describe(element)})` });
      return;
    }
    const leaves: Leaves = { paths: LANE_LEAF_PATHS, base: `${at}.` };
    const own: Problem[] = [];
    const normalized = normalizeLane(element, at, own);
    const nested = checkNesting(laneSchema, normalized.lane, leaves.base, own, leaves);
    // Empty env and args: lane keys have no env vars, and convict would otherwise read process.argv.
    const lane = convict<RawLane>(laneSchema, { env: {}, args: [] });
    try {
      lane.load(nested);
      // `set` coerces the text as the key's format does for env values ("5" → 5).
      for (const o of overrides) if (o.lane === i || o.lane === element['name']) lane.set(o.key, o.value);
      lane.validate({ allowed: 'strict' });
      if (own.length === 0) {
        const properties = lane.getProperties();
        out.push(normalized.httpHandler === undefined ? properties : { ...properties, handler: normalized.httpHandler });
      }
    } catch (err) {
      own.push(...convictProblems(err, leaves));
    }
    problems.push(...own);
  });
  return { lanes: out, problems };
}
