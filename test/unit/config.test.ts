import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadConfig,
  redactConfig,
  redactUrl,
  resolveConfig,
  type ConfigSources,
  type RawConfig,
  type ResolvedConfig,
} from '../../src/config';
import { resolveHeaders } from '../../src/config/http-headers';
import { configView } from '../../src/config/view';
import type { ConfigError } from '../../src/errors';
import { configError } from '../helpers/errors';
import { laneConfig } from '../helpers/lane-config';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'orbit-config-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a file under the test's temp dir and returns its absolute path. */
function write(name: string, content: unknown): string {
  const file = join(dir, name);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Loads with an empty environment unless the test gives one, so the host's ORBIT_* never leak in. */
function load(sources: ConfigSources = {}): ResolvedConfig {
  return loadConfig({ env: {}, cwd: dir, ...sources });
}

/** Loads a config file holding `config` and returns its first lane. */
function loadLane(lane: Record<string, unknown>, config: Record<string, unknown> = {}): ResolvedConfig['lanes'][number] {
  const [first] = load({ configFile: write('orbit.json', { ...config, lanes: [{ name: 'a', ...lane }] }) }).lanes;
  if (first === undefined) throw new Error('no lane');
  return first;
}

/** The ConfigError of loading a config file holding one lane (`name: 'a'` unless given). */
function laneError(lane: Record<string, unknown>, config: Record<string, unknown> = {}): ConfigError {
  return configError(() => loadLane(lane, config));
}

const DEFAULT_TLS = {
  caFile: null,
  certFile: null,
  keyFile: null,
  passphrase: null,
  servername: null,
  rejectUnauthorized: true,
};

function expectDeepFrozen(value: unknown, path = 'config'): void {
  if (typeof value !== 'object' || value === null) return;
  if (!Object.isFrozen(value)) throw new Error(`${path} is not frozen`);
  for (const [key, child] of Object.entries(value)) expectDeepFrozen(child, `${path}.${key}`);
}

describe('loadConfig defaults', () => {
  it('gives every documented default', () => {
    expect(load()).toEqual({
      amqp: {
        urls: ['amqp://guest:guest@127.0.0.1:5672'],
        heartbeatSeconds: 10,
        reconnectMs: 2000,
        publishTimeoutMs: 30_000,
        connectTimeoutMs: 10_000,
        tls: DEFAULT_TLS,
        management: { url: null, check: true },
      },
      namespace: 'orbit',
      delay: { unitMs: 1000, levels: 28, tolerance: 0.02, queueType: 'quorum', holdMs: 0 },
      lanes: [],
      retry: { maxAttempts: 5, backoff: { initialMs: 1000, factor: 2, maxMs: 3_600_000, jitter: 'full' } },
      shutdown: { timeoutMs: 30_000 },
      cancel: { retentionMs: 7 * 86_400_000 },
      deadLetters: { queueType: 'classic' },
      log: { level: 'info' },
      http: { host: '0.0.0.0', port: 9464, ui: { enabled: false, readOnly: true, tokenFile: null, token: null } },
      configFile: null,
    });
  });

  it('applies lane defaults and inherits the global retry', () => {
    const file = write('orbit.json', { retry: { maxAttempts: 7 }, lanes: [{ name: 'fast' }] });
    const [lane] = load({ configFile: file }).lanes;
    expect(lane).toEqual({
      name: 'fast',
      concurrency: 10,
      maxPriority: 9,
      handler: null,
      httpHandler: null,
      timeoutMs: 30_000,
      format: 'raw',
      retry: { maxAttempts: 7, backoff: { initialMs: 1000, factor: 2, maxMs: 3_600_000, jitter: 'full' } },
      partitions: 1,
      queueType: 'classic',
      workAhead: { enabled: true, idleMs: 5000, maxAdvanceMs: 600_000, maxRate: 100 },
      rateLimit: null,
      bundle: { max: 200, lingerMs: 100, maxBytes: 262_144 },
      tolerance: 0.02,
    });
  });

  it('matches the laneConfig test helper, which other tests rely on for defaults', () => {
    expect(loadLane({ name: 'lane' })).toEqual(laneConfig());
  });

  it('returns a deeply frozen object', () => {
    const file = write('orbit.json', { lanes: [{ name: 'a', retry: { backoff: { max: '10m' } } }] });
    const cfg = load({ configFile: file });
    expectDeepFrozen(cfg);
    expect(Object.isFrozen(cfg.lanes[0]?.retry.backoff)).toBe(true);
    expect(Object.isFrozen(cfg.amqp.urls)).toBe(true);
  });
});

describe('loadConfig sources and precedence', () => {
  it('ranks file < env file < environment < overrides', () => {
    const configFile = write('orbit.json', {
      namespace: 'from-file',
      delay: { unit: '2s', levels: 10 },
      log: { level: 'warn' },
      http: { port: 1000 },
    });
    const envFile = write('.env', 'ORBIT_DELAY_LEVELS=11\nORBIT_NAMESPACE=from-env-file\nORBIT_HTTP_PORT=2000\n');
    const cfg = load({
      configFile,
      envFile,
      env: { ORBIT_NAMESPACE: 'from-env', ORBIT_HTTP_PORT: '3000' },
      overrides: { 'http.port': '4000' },
    });
    expect(cfg.log.level).toBe('warn'); // file only
    expect(cfg.delay.unitMs).toBe(2000); // file only
    expect(cfg.delay.levels).toBe(11); // env file beats file
    expect(cfg.namespace).toBe('from-env'); // environment beats env file
    expect(cfg.http.port).toBe(4000); // overrides beat everything
    expect(cfg.delay.queueType).toBe('quorum'); // default
    expect(cfg.configFile).toBe(configFile);
  });

  it('finds the files through ORBIT_CONFIG and ORBIT_ENV_FILE, relative to cwd', () => {
    write('conf/orbit.json', { namespace: 'via-orbit-config' });
    write('conf/orbit.env', 'ORBIT_LOG_LEVEL=debug\n');
    const cfg = load({ env: { ORBIT_CONFIG: 'conf/orbit.json', ORBIT_ENV_FILE: 'conf/orbit.env' } });
    expect(cfg.namespace).toBe('via-orbit-config');
    expect(cfg.log.level).toBe('debug');
    expect(cfg.configFile).toBe(join(dir, 'conf/orbit.json'));
  });

  it('lets the env file name the config file', () => {
    write('orbit.json', { namespace: 'chained' });
    const envFile = write('.env', 'ORBIT_CONFIG=orbit.json\n');
    expect(load({ envFile }).namespace).toBe('chained');
  });

  it('prefers sources.configFile over ORBIT_CONFIG', () => {
    const chosen = write('a.json', { namespace: 'a' });
    write('b.json', { namespace: 'b' });
    expect(load({ configFile: chosen, env: { ORBIT_CONFIG: 'b.json' } }).namespace).toBe('a');
  });

  it('coerces environment and override strings per key', () => {
    const cfg = load({
      env: { ORBIT_DELAY_UNIT: '250ms', ORBIT_DELAY_LEVELS: '12', ORBIT_SHUTDOWN_TIMEOUT: '1m30s', ORBIT_AMQP_HEARTBEAT: '30s' },
      overrides: { 'retry.backoff.factor': '1.5', 'retry.maxAttempts': '3', 'retry.backoff.jitter': 'none' },
    });
    expect(cfg.delay).toEqual({ unitMs: 250, levels: 12, tolerance: 0.02, queueType: 'quorum', holdMs: 0 });
    expect(cfg.shutdown.timeoutMs).toBe(90_000);
    expect(cfg.amqp.heartbeatSeconds).toBe(30);
    expect(cfg.retry).toEqual({ maxAttempts: 3, backoff: { initialMs: 1000, factor: 1.5, maxMs: 3_600_000, jitter: 'none' } });
  });

  it('reads lanes as JSON text from ORBIT_LANES and from overrides', () => {
    const fromEnv = load({ env: { ORBIT_LANES: '[{"name":"env-lane","concurrency":3}]' } });
    expect(fromEnv.lanes.map((l) => [l.name, l.concurrency])).toEqual([['env-lane', 3]]);
    const fromOverride = load({
      env: { ORBIT_LANES: '[{"name":"env-lane"}]' },
      overrides: { lanes: '[{"name":"a"},{"name":"b","format":"json"}]' },
    });
    expect(fromOverride.lanes.map((l) => [l.name, l.format])).toEqual([['a', 'raw'], ['b', 'json']]);
  });

  it('--set reaches one lane by index or by name (lanes[0].timeout, lanes.b.retry.maxAttempts), coerced per key', () => {
    const lanes = '[{"name":"a"},{"name":"b"}]';
    const cfg = load({ overrides: { lanes, 'lanes[0].timeout': '5s', 'lanes.b.retry.maxAttempts': '7', 'lanes[1].concurrency': '3' } });
    expect(cfg.lanes.map((l) => [l.name, l.timeoutMs, l.concurrency, l.retry.maxAttempts])).toEqual([
      ['a', 5000, 10, 5],
      ['b', 30_000, 3, 7],
    ]);
  });

  it.each<[string, string, string]>([
    ['lanes[2].timeout', '5s', 'no lane at index 2'],
    ['lanes.nope.timeout', '5s', 'no lane named "nope"'],
    ['lanes[0].tmeout', '5s', '"tmeout" is not a lane key'],
    ['lanes[0].timeout', 'soon', 'lanes[0].timeout'],
  ])('--set %s=%s is a config error naming it (%s)', (path, value, says) => {
    const err = configError(() => load({ overrides: { lanes: '[{"name":"a"},{"name":"b"}]', [path]: value } }));
    expect(err.message).toContain(says);
  });

  it('merges a partial lane retry over the global retry', () => {
    const file = write('orbit.json', {
      retry: { maxAttempts: 4, backoff: { initial: '2s', jitter: 'equal' } },
      lanes: [{ name: 'slow', timeout: '10m', retry: { backoff: { max: '10m', factor: 3 } } }],
    });
    const [lane] = load({ configFile: file }).lanes;
    expect(lane?.timeoutMs).toBe(600_000);
    expect(lane?.retry).toEqual({ maxAttempts: 4, backoff: { initialMs: 2000, factor: 3, maxMs: 600_000, jitter: 'equal' } });
  });

  it('reads "retry": null and "backoff": null in a lane as inherit-everything', () => {
    const file = write('orbit.json', { lanes: [{ name: 'a', retry: null }, { name: 'b', retry: { maxAttempts: 2, backoff: null } }] });
    const cfg = load({ configFile: file });
    expect(cfg.lanes[0]?.retry).toEqual(cfg.retry);
    expect(cfg.lanes[1]?.retry).toEqual({ ...cfg.retry, maxAttempts: 2 });
  });

  it('resolves a relative handler against the config file directory, else cwd', () => {
    const file = write('etc/orbit/orbit.json', {
      lanes: [{ name: 'a', handler: './handlers/a.js' }, { name: 'b', handler: '/opt/b.js' }],
    });
    const cfg = load({ configFile: file });
    expect(cfg.lanes[0]?.handler).toBe(join(dir, 'etc/orbit/handlers/a.js'));
    expect(cfg.lanes[1]?.handler).toBe('/opt/b.js');

    const noFile = load({ overrides: { lanes: '[{"name":"a","handler":"lib/h.js"}]' } });
    expect(noFile.lanes[0]?.handler).toBe(join(dir, 'lib/h.js'));
  });

  it('treats empty ORBIT_CONFIG and ORBIT_AMQP_URL_FILE as unset', () => {
    const cfg = load({ env: { ORBIT_CONFIG: '', ORBIT_AMQP_URL_FILE: '' } });
    expect(cfg.configFile).toBeNull();
    expect(cfg.amqp.urls).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
  });
});

describe('AMQP URLs', () => {
  it('splits amqp.url on commas into a cluster list', () => {
    const cfg = load({ env: { ORBIT_AMQP_URL: 'amqp://u:p@a:5672, amqps://u:p@b:5671/vh' } });
    expect(cfg.amqp.urls).toEqual(['amqp://u:p@a:5672', 'amqps://u:p@b:5671/vh']);
  });

  it('reads amqp.urlFile, which wins over amqp.url, split on commas, whitespace and newlines', () => {
    write('secrets/amqp', 'amqp://a:p1@h1\namqps://b:p2@h2:5671/v, amqp://c@h3\n');
    const file = write('orbit.json', { amqp: { url: 'amqp://ignored@x', urlFile: 'secrets/amqp' } });
    expect(load({ configFile: file }).amqp.urls).toEqual(['amqp://a:p1@h1', 'amqps://b:p2@h2:5671/v', 'amqp://c@h3']);

    const viaEnv = load({ env: { ORBIT_AMQP_URL: 'amqp://ignored@x', ORBIT_AMQP_URL_FILE: join(dir, 'secrets/amqp') } });
    expect(viaEnv.amqp.urls).toHaveLength(3);
  });

  it('reports an unreadable amqp.urlFile', () => {
    const err = configError(() => load({ env: { ORBIT_AMQP_URL_FILE: 'missing-secret' } }));
    expect(err.path).toBe('amqp.urlFile');
    expect(err.message).toContain('amqp.urlFile cannot be read');
    expect(err.message).toContain('ENOENT');
  });

  it('refuses an amqp.urlFile longer than 64 KiB instead of reading it to the end', () => {
    write('big', 'amqp://a@h\n'.repeat(7000));
    const err = configError(() => load({ env: { ORBIT_AMQP_URL_FILE: 'big' } }));
    expect(err.path).toBe('amqp.urlFile');
    expect(err.message).toContain('larger than 64 KiB');
    // A device never ends; the read stops one byte past the limit.
    const dev = configError(() => load({ env: { ORBIT_AMQP_URL_FILE: '/dev/zero' } }));
    expect(dev.message).toContain('amqp.urlFile cannot be read: /dev/zero (larger than 64 KiB)');
  });

  it('refuses a "__proto__" key in ORBIT_LANES or --set lanes rather than dropping it', () => {
    const lanes = '[{"name":"a","__proto__":{"concurrency":5}}]';
    const fromEnv = configError(() => load({ env: { ORBIT_LANES: lanes } }));
    expect(fromEnv.message).toContain('lanes: a "__proto__" key is not allowed (found in ORBIT_LANES)');
    const fromSet = configError(() => load({ overrides: { lanes } }));
    expect(fromSet.message).toContain('(found in --set lanes)');
  });

  it('refuses a non-AMQP URL without printing it', () => {
    const err = configError(() => load({ env: { ORBIT_AMQP_URL: 'amqp://ok@h,http://user:hunter2@host' } }));
    expect(err.message).toContain('amqp.url[1] must start with amqp:// or amqps://');
    expect(err.path).toBe('amqp.url[1]');
    expect(err.message).not.toContain('hunter2');
  });

  it('keeps a mistyped amqp.url out of stage-1 messages too (sensitive key)', () => {
    const file = write('orbit.json', { amqp: { url: { password: 'hunter2' } } });
    const err = configError(() => load({ configFile: file }));
    expect(err.message).toContain('amqp.url');
    expect(err.message).not.toContain('hunter2');
  });
});

describe('errors name the offending key', () => {
  it('a bad duration', () => {
    const file = write('orbit.json', { delay: { unit: '5x' } });
    const err = configError(() => load({ configFile: file }));
    expect(err.path).toBe('delay.unit');
    expect(err.message).toContain('delay.unit');
    expect(err.message).toContain('5x');
  });

  it('a bad duration from the environment', () => {
    const err = configError(() => load({ env: { ORBIT_SHUTDOWN_TIMEOUT: '-3s' } }));
    expect(err.message).toMatch(/shutdown\.timeout.*must not be negative/);
  });

  it('an unknown top-level key', () => {
    const file = write('orbit.json', { namespce: 'typo' });
    const err = configError(() => load({ configFile: file }));
    expect(err.path).toBe('namespce');
    expect(err.message).toContain("'namespce' not declared");
  });

  it('an unknown nested key', () => {
    const file = write('orbit.json', { amqp: { heartbeats: '5s' } });
    expect(configError(() => load({ configFile: file })).message).toContain('amqp.heartbeats');
  });

  it('an unknown key inside a lane', () => {
    const file = write('orbit.json', { lanes: [{ name: 'a', foo: 1 }, { name: 'b', retry: { bar: 2 } }] });
    const err = configError(() => load({ configFile: file }));
    expect(err.path).toBe('lanes[0].foo');
    expect(err.message).toContain('lanes[0].foo');
    expect(err.message).toContain('lanes[1].retry.bar');
  });

  it('a lane that is not an object, and a lane without a name', () => {
    const err = configError(() => load({ overrides: { lanes: '["fast", {"concurrency": 2}]' } }));
    expect(err.message).toContain('lanes[0]: must be an object');
    expect(err.message).toContain('lanes[1].name: is required');
  });

  it('lanes that are not an array', () => {
    const err = configError(() => load({ env: { ORBIT_LANES: '{"name": "x"' } }));
    expect(err.path).toBe('lanes');
    expect(err.message).toContain('must be a JSON array');
  });

  it('a type error inside a lane', () => {
    const file = write('orbit.json', { lanes: [{ name: 'a', concurrency: '3x', timeout: 'soon' }] });
    const err = configError(() => load({ configFile: file }));
    expect(err.message).toContain('lanes[0].concurrency: must be an integer');
    expect(err.message).toContain('lanes[0].timeout: must be a duration');
  });

  it('a duplicate lane name', () => {
    const file = write('orbit.json', { lanes: [{ name: 'fast' }, { name: 'slow' }, { name: 'fast' }] });
    const err = configError(() => load({ configFile: file }));
    expect(err.path).toBe('lanes[2].name');
    expect(err.message).toContain('lanes[2].name "fast" duplicates lanes[0].name');
  });

  it('a lane name with a dot', () => {
    const file = write('orbit.json', { lanes: [{ name: 'a.b' }] });
    const err = configError(() => load({ configFile: file }));
    expect(err.path).toBe('lanes[0].name');
    expect(err.message).toContain('lanes[0].name "a.b"');
    expect(err.message).toContain('routing-key');
  });

  it('retry.maxAttempts 0 in a lane', () => {
    const file = write('orbit.json', { lanes: [{ name: 'a' }, { name: 'b', retry: { maxAttempts: 0 } }] });
    const err = configError(() => load({ configFile: file }));
    expect(err.path).toBe('lanes[1].retry.maxAttempts');
    expect(err.message).toContain('lanes[1].retry.maxAttempts must be ≥ 1 (got 0)');
  });

  it('backoff.initial above an inherited backoff.max', () => {
    const file = write('orbit.json', { lanes: [{ name: 'a', retry: { backoff: { initial: '2h' } } }] });
    const err = configError(() => load({ configFile: file }));
    expect(err.message).toContain('lanes[0].retry.backoff.initial (2h) must be ≤ lanes[0].retry.backoff.max (1h, inherited from retry)');
  });

  it('every range problem at once', () => {
    const file = write('orbit.json', {
      namespace: 'my.ns',
      delay: { unit: 0, levels: 41 },
      retry: { backoff: { factor: 0.5, max: 0 } },
      http: { port: 70000 },
      lanes: [{ name: 'a', concurrency: 0, maxPriority: 256, timeout: 0 }],
    });
    const err = configError(() => load({ configFile: file }));
    for (const expected of [
      'namespace "my.ns"',
      'delay.unit must be ≥ 1ms (got 0ms)',
      'delay.levels must be between 1 and 40 (got 41)',
      'retry.backoff.factor must be ≥ 1 (got 0.5)',
      'retry.backoff.max must be > 0',
      'http.port must be between 0 and 65535 (got 70000)',
      'lanes[0].concurrency must be ≥ 1 (got 0)',
      'lanes[0].maxPriority must be between 0 and 255 (got 256)',
      'lanes[0].timeout must be > 0',
    ]) {
      expect(err.message).toContain(expected);
    }
  });

  it('a longest delay beyond Number.MAX_SAFE_INTEGER ms', () => {
    const err = configError(() => load({ env: { ORBIT_DELAY_LEVELS: '40', ORBIT_DELAY_UNIT: '100000d' } }));
    expect(err.path).toBe('delay.levels');
    expect(err.message).toContain('MAX_SAFE_INTEGER');
  });

  it('a heartbeat that is not whole seconds', () => {
    const err = configError(() => load({ env: { ORBIT_AMQP_HEARTBEAT: '1500ms' } }));
    expect(err.message).toContain('amqp.heartbeat must be a whole number of seconds (got 1s500ms)');
  });

  it('allows quorum delay queues with lane priorities', () => {
    const file = write('orbit.json', { delay: { queueType: 'quorum' }, lanes: [{ name: 'a', maxPriority: 10 }] });
    expect(load({ configFile: file }).delay.queueType).toBe('quorum');
  });

  it('an enum value out of range', () => {
    const err = configError(() => load({ env: { ORBIT_LOG_LEVEL: 'verbose' } }));
    expect(err.path).toBe('log.level');
    expect(err.message).toContain('log.level: must be one of the possible values');
  });

  it('an integer with trailing junk', () => {
    const err = configError(() => load({ env: { ORBIT_HTTP_PORT: '80x' } }));
    expect(err.message).toContain('http.port: must be an integer');
  });

  it('an override that names no key', () => {
    for (const key of ['nope', 'amqp', 'delay.unit.ms']) {
      const err = configError(() => load({ overrides: { [key]: '1' } }));
      expect(err.message).toContain(`override "${key}" does not name a configuration key`);
    }
    // Inside lanes, a path names a lane (by index or name) and one of its keys.
    expect(configError(() => load({ overrides: { 'lanes.0.name': '1' } })).message).toContain('there is no lane named "0"');
  });
});

describe('file errors name the file', () => {
  it('a missing config file', () => {
    const err = configError(() => load({ configFile: 'nope.json' }));
    expect(err.message).toContain(join(dir, 'nope.json'));
    expect(err.message).toContain('does not exist');
  });

  it('a config file that is not JSON', () => {
    const file = write('bad.json', '{ "namespace": ');
    const err = configError(() => load({ configFile: file }));
    expect(err.message).toContain(file);
    expect(err.message).toContain('not valid JSON');
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it('a config file that holds no object', () => {
    const file = write('list.json', '[1, 2]');
    expect(configError(() => load({ configFile: file })).message).toContain('must hold a JSON object (got an array)');
  });

  it('a config file that is a directory', () => {
    const err = configError(() => load({ configFile: dir }));
    expect(err.message).toContain('cannot be read (EISDIR)');
  });

  it('a missing env file', () => {
    const err = configError(() => load({ env: { ORBIT_ENV_FILE: 'missing.env' } }));
    expect(err.message).toContain(`env file ${join(dir, 'missing.env')} does not exist`);
  });
});

const raw: RawConfig = {
  amqp: {
    url: 'amqp://guest:guest@localhost',
    urlFile: null,
    heartbeat: '5s',
    reconnect: 100,
    publishTimeout: '1m',
    connectTimeout: '5s',
    tls: { ca: null, cert: null, key: null, passphrase: null, servername: null, rejectUnauthorized: true },
    management: { url: null, check: true },
  },
  namespace: 'ns',
  delay: { unit: '1m', levels: 20, tolerance: 0, queueType: 'quorum', hold: '0s' },
  retry: { maxAttempts: 2, backoff: { initial: '1s', factor: 2, max: '1h', jitter: 'none' } },
  lanes: [
    {
      name: 'x',
      concurrency: 1,
      maxPriority: 0,
      handler: 'h.js',
      timeout: '5s',
      format: 'json',
      partitions: 1,
      queueType: 'classic',
      workAhead: { enabled: true, idle: '5s', maxAdvance: '10m', maxRate: 100 },
      rateLimit: null,
      bundle: { max: 1, linger: '100ms', maxBytes: 262_144 },
      tolerance: null,
    },
  ],
  shutdown: { timeout: '0' },
  cancel: { retention: '2d' },
  deadLetters: { queueType: 'quorum' },
  log: { level: 'debug' },
  http: { host: 'localhost', port: 0, ui: { enabled: false, readOnly: true, tokenFile: null } },
};

/** A raw lane as stage 1 hands it over, with the schema defaults. */
function laneRaw(): RawConfig['lanes'][number] {
  return {
    name: 'x',
    concurrency: 1,
    maxPriority: 0,
    handler: null,
    timeout: '5s',
    format: 'raw',
    partitions: 1,
    queueType: 'classic',
    workAhead: { enabled: true, idle: '5s', maxAdvance: '10m', maxRate: 100 },
    rateLimit: null,
    bundle: { max: 1, linger: '100ms', maxBytes: 262_144 },
    tolerance: null,
  };
}

function rawWith(lanes: RawConfig['lanes']): RawConfig {
  return { ...raw, lanes };
}

describe('resolveConfig', () => {
  it('resolves literal raw input, reading urlFile through the injected reader', () => {
    const cfg = resolveConfig(
      { ...raw, amqp: { ...raw.amqp, urlFile: 'secret' } },
      { configFile: '/etc/orbit/orbit.json', readFile: (path) => (path === '/etc/orbit/secret' ? 'amqp://a@b' : '') },
    );
    expect(cfg.amqp).toEqual({ urls: ['amqp://a@b'], heartbeatSeconds: 5, reconnectMs: 100, publishTimeoutMs: 60_000, connectTimeoutMs: 5000, tls: DEFAULT_TLS, management: { url: null, check: true } });
    expect(cfg.lanes[0]?.handler).toBe('/etc/orbit/h.js');
    expect(cfg.configFile).toBe('/etc/orbit/orbit.json');
    expect(cfg.shutdown.timeoutMs).toBe(0);
    expectDeepFrozen(cfg);
  });

  it('refuses an empty URL list', () => {
    const err = configError(() => resolveConfig({ ...raw, amqp: { ...raw.amqp, url: ' , ' } }));
    expect(err.message).toContain('amqp.url must hold at least one AMQP URL');
  });
});

describe('redaction', () => {
  it.each<[string, string]>([
    ['amqp://app:s3cret@mq:5672/prod', 'amqp://app:***@mq:5672/prod'],
    ['amqps://app:s3cret@mq/%2f', 'amqps://app:***@mq/%2f'],
    ['amqp://app:p@ss/w@rd@mq:5672', 'amqp://app:***@mq:5672'],
    ['amqp://app@mq:5672', 'amqp://app@mq:5672'],
    ['amqp://mq:5672/vhost', 'amqp://mq:5672/vhost'],
    ['amqp://:secret@mq', 'amqp://:***@mq'],
  ])('redactUrl(%p) → %p', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it('redactConfig hides every password and leaves the config intact', () => {
    const cfg = load({ env: { ORBIT_AMQP_URL: 'amqp://u:pw1@a:5672/v,amqps://u:pw2@b' } });
    const redacted = redactConfig(cfg);
    const text = JSON.stringify(redacted);
    expect(text).not.toContain('pw1');
    expect(text).not.toContain('pw2');
    expect(redacted).toMatchObject({ amqp: { urls: ['amqp://u:***@a:5672/v', 'amqps://u:***@b'] }, namespace: 'orbit' });
    expect(cfg.amqp.urls[0]).toBe('amqp://u:pw1@a:5672/v');
  });
});

describe('lanes[].handler as an HTTP endpoint', () => {
  it('keeps where each header comes from; resolveHeaders reads literal, { env } and { file } values', () => {
    write('etc/secrets/token', 'from-file\n');
    const configFile = write('etc/orbit.json', {
      lanes: [
        {
          name: 'http',
          handler: {
            url: 'https://worker.internal:8443/jobs',
            headers: {
              'X-Literal': 'plain',
              Authorization: { env: 'ORBIT_TEST_TOKEN' },
              'X-From-File': { file: 'secrets/token' },
            },
          },
        },
        { name: 'module', handler: './h.js' },
        { name: 'none' },
      ],
    });
    const cfg = load({ configFile, env: { ORBIT_TEST_TOKEN: 'Bearer from-env' } });
    expect(cfg.lanes[0]?.handler).toBeNull();
    expect(cfg.lanes[0]?.httpHandler).toEqual({
      url: 'https://worker.internal:8443/jobs',
      headers: {
        'X-Literal': { value: 'plain' },
        Authorization: { env: 'ORBIT_TEST_TOKEN', value: 'Bearer from-env' },
        'X-From-File': { file: join(dir, 'etc/secrets/token') },
      },
    });
    expect(resolveHeaders(cfg.lanes[0]!.httpHandler!, 'lanes[0].handler')).toEqual({
      'X-Literal': 'plain',
      Authorization: 'Bearer from-env',
      'X-From-File': 'from-file',
    });
    expect(cfg.lanes[1]).toMatchObject({ handler: join(dir, 'etc/h.js'), httpHandler: null });
    expect(cfg.lanes[2]).toMatchObject({ handler: null, httpHandler: null });
    expectDeepFrozen(cfg);
  });

  it('takes { env } values from the env file too, and headers may be left out or null', () => {
    const envFile = write('.env', 'HOOK_TOKEN=t0k3n\n');
    const cfg = load({
      envFile,
      overrides: {
        lanes: JSON.stringify([
          { name: 'a', handler: { url: 'http://h/a', headers: { 'X-Token': { env: 'HOOK_TOKEN' } } } },
          { name: 'b', handler: { url: 'http://h/b' } },
          { name: 'c', handler: { url: 'http://h/c', headers: null } },
        ]),
      },
    });
    expect(cfg.lanes.map((l) => resolveHeaders(l.httpHandler!, 'h'))).toEqual([{ 'X-Token': 't0k3n' }, {}, {}]);
  });

  it('resolveConfig takes { env } from the context; resolveHeaders reads { file } through its reader', () => {
    const lane = { ...laneRaw(), handler: { url: 'http://h', headers: { A: { env: 'V' }, B: { file: 'b.txt' } } } };
    const cfg = resolveConfig(rawWith([lane]), { baseDir: '/etc/orbit', env: { V: 'from-env' } });
    const read = (path: string): string => (path === '/etc/orbit/b.txt' ? 'from-file\r\n\n' : '');
    expect(resolveHeaders(cfg.lanes[0]!.httpHandler!, 'lanes[0].handler', read)).toEqual({ A: 'from-env', B: 'from-file' });
  });

  it('loads a config whose header variables and files are missing: only resolving (the daemon) fails', () => {
    const cfg = loadLane({
      handler: { url: 'http://h', headers: { 'X-Api-Key': 'literal-s3cret', Authorization: { env: 'MISSING_TOKEN' }, B: { file: 'nope' } } },
    });
    const err = configError(() => resolveHeaders(cfg.httpHandler!, 'lanes[0].handler'));
    expect(err.path).toBe('lanes[0].handler.headers.Authorization');
    expect(err.message).toBe(
      'lanes[0].handler.headers.Authorization: environment variable MISSING_TOKEN is not set\n' +
        `lanes[0].handler.headers.B: file ${join(dir, 'nope')} cannot be read (ENOENT)`,
    );
    expect(err.message).not.toContain('literal-s3cret');
  });

  it('treats an empty environment variable as unset', () => {
    const cfg = load({ env: { EMPTY: '', ORBIT_LANES: '[{"name":"a","handler":{"url":"http://h","headers":{"A":{"env":"EMPTY"}}}}]' } });
    expect(configError(() => resolveHeaders(cfg.lanes[0]!.httpHandler!, 'lanes[0].handler')).message).toBe(
      'lanes[0].handler.headers.A: environment variable EMPTY is not set',
    );
  });

  it('reports an empty header file by header and file', () => {
    write('empty', '\n');
    const cfg = loadLane({ handler: { url: 'http://h', headers: { A: { file: 'empty' } } } });
    expect(configError(() => resolveHeaders(cfg.httpHandler!, 'lanes[0].handler')).message).toBe(
      `lanes[0].handler.headers.A: file ${join(dir, 'empty')} is empty`,
    );
  });

  it('refuses header values with line breaks, without printing them: literals when loading, files when resolving', () => {
    write('two-lines', 'first-s3cret\nsecond-s3cret\n');
    const err = laneError({
      handler: { url: 'http://h', headers: { A: { file: 'two-lines' }, B: 'x\r\nInjected: s3cret' } },
    });
    expect(err.message).toBe('lanes[0].handler.headers.B: its value holds a line break or control character, which HTTP header values cannot');
    const cfg = loadLane({ handler: { url: 'http://h', headers: { A: { file: 'two-lines' } } } });
    const resolveErr = configError(() => resolveHeaders(cfg.httpHandler!, 'lanes[0].handler'));
    expect(resolveErr.message).toContain(`lanes[0].handler.headers.A: file ${join(dir, 'two-lines')} holds a line break or control character`);
    expect(resolveErr.message).not.toContain('s3cret');
  });

  it.each<[string, string]>([
    ['ftp://h/x', 'lanes[0].handler.url must start with http:// or https:// (got "ftp://h/x")'],
    ['worker:8080/x', 'lanes[0].handler.url must start with http:// or https://'],
    ['http://', 'lanes[0].handler.url is not a valid URL (got "http://")'],
    ['http://exa mple.com/', 'lanes[0].handler.url is not a valid URL'],
  ])('refuses the URL %p', (url, expected) => {
    const err = laneError({ handler: { url } });
    expect(err.path).toBe('lanes[0].handler.url');
    expect(err.message).toContain(expected);
  });

  it('masks a password in a refused URL', () => {
    const err = laneError({ handler: { url: 'ftp://user:hunter2@h/x' } });
    expect(err.message).toContain('(got "ftp://user:***@h/x")');
    expect(err.message).not.toContain('hunter2');
  });

  it('checks the object form: known keys, url required, header names and value forms', () => {
    const err = laneError({
      handler: {
        method: 'POST',
        headers: {
          'Bad Name': 'x',
          'X-Num': 5,
          'X-Both': { env: 'A', file: 'b' },
          'X-Other': { path: 'p' },
          'X-Empty-Env': { env: '' },
          'X-Token': 'a',
          'x-token': 'b',
        },
      },
    });
    expect(err.path).toBe('lanes[0].handler.method');
    for (const expected of [
      "configuration param 'lanes[0].handler.method' not declared in the schema",
      'lanes[0].handler.url: is required',
      'lanes[0].handler.headers: "Bad Name" is not a valid HTTP header name',
      'lanes[0].handler.headers.X-Num: must be a string, { "env": "VAR" } or { "file": "path" } (got number)',
      'lanes[0].handler.headers.X-Both: must be a string, { "env": "VAR" } or { "file": "path" } (got an object with "env", "file")',
      'lanes[0].handler.headers.X-Other: must be a string, { "env": "VAR" } or { "file": "path" } (got an object with "path")',
      'lanes[0].handler.headers.X-Empty-Env.env: must be an environment variable name (got an empty string)',
      'lanes[0].handler.headers: "X-Token" and "x-token" name the same header (names ignore case)',
    ]) {
      expect(err.message).toContain(expected);
    }
  });

  it('refuses a url or headers of the wrong type, and a handler that is neither form', () => {
    expect(laneError({ handler: { url: 5, headers: ['A: b'] } }).message).toBe(
      'lanes[0].handler.url: must be a string (got number)\n' +
        'lanes[0].handler.headers: must be an object of header name → value (got an array)',
    );
    expect(laneError({ handler: 42 }).message).toContain('lanes[0].handler: must be a module path (a string) or an object');
  });

  it('keeps literal header values of a malformed ORBIT_LANES out of the message', () => {
    const err = configError(() => load({ env: { ORBIT_LANES: '[{"name":"a","handler":{"url":"http://h","headers":{"A":"s3cret"}}' } }));
    expect(err.message).toContain('lanes: must be a JSON array');
    expect(err.message).not.toContain('s3cret');
  });
});

describe('lanes[].partitions and lanes[].queueType', () => {
  it('accepts 1–64 partitions and a quorum lane with maxPriority 0', () => {
    expect(loadLane({ partitions: 64, queueType: 'quorum', maxPriority: 0 })).toMatchObject({
      partitions: 64,
      queueType: 'quorum',
      maxPriority: 0,
    });
  });

  it.each([0, 65])('refuses %p partitions', (partitions) => {
    const err = laneError({ partitions });
    expect(err.path).toBe('lanes[0].partitions');
    expect(err.message).toBe(`lanes[0].partitions must be between 1 and 64 (got ${partitions})`);
  });

  it('refuses a fractional partition count and an unknown queue type', () => {
    const err = laneError({ partitions: 1.5, queueType: 'stream' });
    expect(err.message).toContain('lanes[0].partitions: must be an integer');
    expect(err.message).toContain('lanes[0].queueType: must be one of the possible values: ["classic","quorum"]');
  });

  it('accepts a quorum lane with priorities (the broker version decides at connect)', () => {
    expect(loadLane({ queueType: 'quorum' })).toMatchObject({ queueType: 'quorum', maxPriority: 9 });
  });
});

describe('lanes[].workAhead', () => {
  const DEFAULT = { enabled: true, idleMs: 5000, maxAdvanceMs: 600_000, maxRate: 100 };

  it('fills the keys left out with defaults', () => {
    expect(loadLane({ workAhead: { idle: '1s' } }).workAhead).toEqual({ ...DEFAULT, idleMs: 1000 });
    expect(loadLane({ workAhead: { enabled: false, maxAdvance: '1h', maxRate: 2.5 } }).workAhead).toEqual({
      ...DEFAULT,
      enabled: false,
      maxAdvanceMs: 3_600_000,
      maxRate: 2.5,
    });
    expect(loadLane({ workAhead: {} }).workAhead).toEqual(DEFAULT);
  });

  it('reads false (and true) as shorthand for enabled', () => {
    expect(loadLane({ workAhead: false }).workAhead).toEqual({ ...DEFAULT, enabled: false });
    expect(loadLane({ workAhead: true }).workAhead).toEqual(DEFAULT);
  });

  it('accepts idle 0', () => {
    expect(loadLane({ workAhead: { idle: 0 } }).workAhead.idleMs).toBe(0);
  });

  it('refuses null, pointing at false', () => {
    const err = laneError({ workAhead: null });
    expect(err.path).toBe('lanes[0].workAhead');
    expect(err.message).toBe('lanes[0].workAhead: must be an object, or false to turn work-ahead off (got null)');
  });

  it('refuses bad values, each by path', () => {
    const err = laneError({ workAhead: { enabled: 'yes', idle: '5x', maxAdvance: 0, maxRate: 0 } });
    for (const expected of [
      'lanes[0].workAhead.enabled: must be true or false',
      'lanes[0].workAhead.idle: must be a duration',
    ]) {
      expect(err.message).toContain(expected);
    }
    // Stage 2 runs once stage 1 passes.
    const ranges = laneError({ workAhead: { maxAdvance: 0, maxRate: -1 } });
    expect(ranges.path).toBe('lanes[0].workAhead.maxAdvance');
    expect(ranges.message).toBe(
      'lanes[0].workAhead.maxAdvance must be > 0 (got 0ms); to turn work-ahead off, set lanes[0].workAhead: false\n' +
        'lanes[0].workAhead.maxRate must be > 0 (got -1)',
    );
  });

  it('refuses unknown keys, with a hint for the resolved names', () => {
    const err = laneError({ workAhead: { idleMs: 5000, rate: 3 } });
    expect(err.message).toContain(
      "configuration param 'lanes[0].workAhead.idleMs' not declared in the schema (did you mean 'lanes[0].workAhead.idle'?",
    );
    expect(err.message).toContain("configuration param 'lanes[0].workAhead.rate' not declared in the schema");
  });

  it('refuses a value that is neither an object nor a boolean', () => {
    expect(laneError({ workAhead: 'off' }).message).toBe('lanes[0].workAhead: must be an object (got string)');
  });
});

describe('lanes[].rateLimit', () => {
  it('is null when left out or null, and converts per to milliseconds', () => {
    expect(loadLane({}).rateLimit).toBeNull();
    expect(loadLane({ rateLimit: null }).rateLimit).toBeNull();
    expect(loadLane({ rateLimit: { max: 50, per: '1m' } }).rateLimit).toEqual({ max: 50, perMs: 60_000 });
  });

  it('refuses max below 1 and per 0', () => {
    const err = laneError({ rateLimit: { max: 0, per: 0 } });
    expect(err.path).toBe('lanes[0].rateLimit.max');
    expect(err.message).toBe('lanes[0].rateLimit.max must be ≥ 1 (got 0)\nlanes[0].rateLimit.per must be > 0 (got 0ms)');
  });

  it('needs both keys', () => {
    expect(laneError({ rateLimit: { max: 5 } }).message).toBe('lanes[0].rateLimit.per is required when lanes[0].rateLimit.max is set');
    const err = laneError({ rateLimit: { per: '1s' } });
    expect(err.path).toBe('lanes[0].rateLimit.max');
    expect(err.message).toBe('lanes[0].rateLimit.max is required when lanes[0].rateLimit.per is set');
  });

  it('refuses wrong types and unknown keys', () => {
    const err = laneError({ rateLimit: { max: 1.5, per: 'often', burst: 3 } });
    expect(err.message).toContain('lanes[0].rateLimit.max: must be an integer');
    expect(err.message).toContain('lanes[0].rateLimit.per: must be a duration');
    expect(err.message).toContain("configuration param 'lanes[0].rateLimit.burst' not declared in the schema");
    expect(laneError({ rateLimit: 10 }).message).toBe('lanes[0].rateLimit: must be an object (got number)');
  });
});

describe('lanes[].bundle', () => {
  const DEFAULT = { max: 200, lingerMs: 100, maxBytes: 262_144 };

  it('fills the keys left out with defaults; null means all defaults', () => {
    expect(loadLane({ bundle: { max: 1 } }).bundle).toEqual({ ...DEFAULT, max: 1 });
    expect(loadLane({ bundle: { linger: '1s', maxBytes: 1024 } }).bundle).toEqual({ max: 200, lingerMs: 1000, maxBytes: 1024 });
    expect(loadLane({ bundle: { max: 10_000, linger: 0, maxBytes: 16 * 1024 * 1024 } }).bundle).toEqual({
      max: 10_000,
      lingerMs: 0,
      maxBytes: 16 * 1024 * 1024,
    });
    expect(loadLane({ bundle: null }).bundle).toEqual(DEFAULT);
  });

  it.each<[Record<string, unknown>, string]>([
    [{ max: 0 }, 'lanes[0].bundle.max must be between 1 and 10000 (got 0)'],
    [{ max: 10_001 }, 'lanes[0].bundle.max must be between 1 and 10000 (got 10001)'],
    [{ maxBytes: 1023 }, 'lanes[0].bundle.maxBytes must be between 1024 and 16777216 (got 1023)'],
    [{ maxBytes: 16 * 1024 * 1024 + 1 }, 'lanes[0].bundle.maxBytes must be between 1024 and 16777216 (got 16777217)'],
  ])('refuses %p', (bundle, expected) => {
    expect(laneError({ bundle }).message).toBe(expected);
  });

  it('refuses wrong types and unknown keys', () => {
    const err = laneError({ bundle: { linger: '-1s', maxBytes: '1MiB', size: 3 } });
    expect(err.message).toContain('lanes[0].bundle.linger: must not be negative');
    expect(err.message).toContain('lanes[0].bundle.maxBytes: must be an integer');
    expect(err.message).toContain("configuration param 'lanes[0].bundle.size' not declared in the schema");
  });
});

describe('amqp.tls', () => {
  const TLS_URL = 'amqps://u:p@mq:5671';

  it('resolves files against the config file directory', () => {
    write('etc/tls/ca.pem', 'ca');
    write('etc/tls/client.pem', 'cert');
    write('etc/tls/client.key', 'key');
    const configFile = write('etc/orbit.json', {
      amqp: {
        url: TLS_URL,
        tls: {
          ca: 'tls/ca.pem',
          cert: 'tls/client.pem',
          key: join(dir, 'etc/tls/client.key'),
          passphrase: 'pass',
          servername: 'mq.example.com',
          rejectUnauthorized: false,
        },
      },
    });
    expect(load({ configFile }).amqp.tls).toEqual({
      caFile: join(dir, 'etc/tls/ca.pem'),
      certFile: join(dir, 'etc/tls/client.pem'),
      keyFile: join(dir, 'etc/tls/client.key'),
      passphrase: 'pass',
      servername: 'mq.example.com',
      rejectUnauthorized: false,
    });
  });

  it('reads ORBIT_AMQP_TLS_* (relative to cwd without a config file); empty means unset', () => {
    write('ca.pem', 'ca');
    write('c.pem', 'cert');
    write('c.key', 'key');
    const cfg = load({
      env: {
        ORBIT_AMQP_URL: TLS_URL,
        ORBIT_AMQP_TLS_CA: 'ca.pem',
        ORBIT_AMQP_TLS_CERT: 'c.pem',
        ORBIT_AMQP_TLS_KEY: 'c.key',
        ORBIT_AMQP_TLS_PASSPHRASE: 'pw',
      },
    });
    expect(cfg.amqp.tls).toEqual({
      ...DEFAULT_TLS,
      caFile: join(dir, 'ca.pem'),
      certFile: join(dir, 'c.pem'),
      keyFile: join(dir, 'c.key'),
      passphrase: 'pw',
    });
    const empty = load({ env: { ORBIT_AMQP_TLS_CA: '', ORBIT_AMQP_TLS_PASSPHRASE: '' } });
    expect(empty.amqp.tls).toEqual(DEFAULT_TLS);
  });

  it('reads rejectUnauthorized from an override strictly', () => {
    const cfg = load({ env: { ORBIT_AMQP_URL: TLS_URL }, overrides: { 'amqp.tls.rejectUnauthorized': 'false' } });
    expect(cfg.amqp.tls.rejectUnauthorized).toBe(false);
    const err = configError(() => load({ overrides: { 'amqp.tls.rejectUnauthorized': 'no' } }));
    expect(err.path).toBe('amqp.tls.rejectUnauthorized');
    expect(err.message).toContain('amqp.tls.rejectUnauthorized: must be true or false');
  });

  it('refuses a file that does not exist', () => {
    const err = configError(() => load({ env: { ORBIT_AMQP_URL: TLS_URL, ORBIT_AMQP_TLS_CA: 'missing/ca.pem' } }));
    expect(err.path).toBe('amqp.tls.ca');
    expect(err.message).toBe(`amqp.tls.ca: file not found: ${join(dir, 'missing/ca.pem')}`);
  });

  it('refuses cert without key and key without cert, naming both', () => {
    write('c.pem', 'cert');
    const err = configError(() => load({ env: { ORBIT_AMQP_URL: TLS_URL, ORBIT_AMQP_TLS_CERT: 'c.pem' } }));
    expect(err.path).toBe('amqp.tls.key');
    expect(err.message).toBe('amqp.tls.cert and amqp.tls.key must be set together (amqp.tls.cert is set, amqp.tls.key is not)');

    write('c.key', 'key');
    const other = configError(() => load({ env: { ORBIT_AMQP_URL: TLS_URL, ORBIT_AMQP_TLS_KEY: 'c.key' } }));
    expect(other.path).toBe('amqp.tls.cert');
    expect(other.message).toBe('amqp.tls.cert and amqp.tls.key must be set together (amqp.tls.key is set, amqp.tls.cert is not)');
  });

  it('refuses a passphrase without a key, without printing it', () => {
    const err = configError(() => load({ env: { ORBIT_AMQP_URL: TLS_URL, ORBIT_AMQP_TLS_PASSPHRASE: 'hunter2' } }));
    expect(err.path).toBe('amqp.tls.passphrase');
    expect(err.message).not.toContain('hunter2');
  });

  it('keeps a mistyped passphrase out of stage-1 messages (sensitive key)', () => {
    const configFile = write('orbit.json', { amqp: { url: TLS_URL, tls: { passphrase: ['hunter2'] } } });
    const err = configError(() => load({ configFile }));
    expect(err.message).toContain('amqp.tls.passphrase');
    expect(err.message).not.toContain('hunter2');
  });

  it('refuses TLS settings when no URL uses amqps://', () => {
    write('ca.pem', 'ca');
    const err = configError(() => load({ env: { ORBIT_AMQP_TLS_CA: 'ca.pem' } }));
    expect(err.path).toBe('amqp.tls');
    expect(err.message).toBe('amqp.tls is set but no AMQP URL uses amqps://, so TLS would not be used');
  });

  it('refuses unknown keys and a non-object', () => {
    const configFile = write('orbit.json', { amqp: { tls: { caFile: 'x' } } });
    expect(configError(() => load({ configFile })).message).toContain("configuration param 'amqp.tls.caFile' not declared in the schema");
    const notObject = write('b.json', { amqp: { tls: true } });
    const err = configError(() => load({ configFile: notObject }));
    expect(err.path).toBe('amqp.tls');
    expect(err.message).toBe('amqp.tls: must be an object (got boolean)');
  });

  it('resolveConfig checks files through the injected fileExists', () => {
    const raw = rawWith([]);
    const tls = { ...raw.amqp.tls, ca: 'ca.pem' };
    const amqp = { ...raw.amqp, url: TLS_URL, tls };
    const cfg = resolveConfig({ ...raw, amqp }, { baseDir: '/etc/orbit', fileExists: (path) => path === '/etc/orbit/ca.pem' });
    expect(cfg.amqp.tls.caFile).toBe('/etc/orbit/ca.pem');
    expect(() => resolveConfig({ ...raw, amqp }, { baseDir: '/etc/orbit', fileExists: () => false })).toThrow(
      'amqp.tls.ca: file not found: /etc/orbit/ca.pem',
    );
  });
});

describe('nesting that convict cannot report itself', () => {
  it('an object under a value key, at any depth', () => {
    const configFile = write('orbit.json', { namespace: { a: { b: 1 } } });
    const err = configError(() => load({ configFile }));
    expect(err.path).toBe('namespace');
    expect(err.message).toBe('namespace: must be a single value, not an object');

    const lane = laneError({ concurrency: { a: { b: 1 } }, bundle: { max: { x: { y: 1 } } } });
    expect(lane.message).toBe(
      'lanes[0].concurrency: must be a single value, not an object\nlanes[0].bundle.max: must be a single value, not an object',
    );
  });

  it('lanes given as an object', () => {
    const configFile = write('orbit.json', { lanes: { fast: { concurrency: 2 } } });
    expect(configError(() => load({ configFile })).message).toBe('lanes: must be a JSON array of lane objects (got an object)');
  });

  it('a group given as a value', () => {
    const configFile = write('orbit.json', { amqp: 'amqp://x', lanes: [{ name: 'a', retry: 3 }] });
    const err = configError(() => load({ configFile }));
    expect(err.message).toBe('amqp: must be an object (got string)\nlanes[0].retry: must be an object (got number)');
  });

  it('hints at the file name of a duration key given with an Ms suffix', () => {
    const configFile = write('orbit.json', { shutdown: { timeoutMs: 5000 }, lanes: [{ name: 'a', timeoutMs: 5000 }] });
    const err = configError(() => load({ configFile }));
    expect(err.message).toContain(
      "configuration param 'shutdown.timeoutMs' not declared in the schema (did you mean 'shutdown.timeout'? It takes a duration such as \"5s\" or 5000)",
    );
    expect(err.message).toContain("configuration param 'lanes[0].timeoutMs' not declared in the schema (did you mean 'lanes[0].timeout'?");
  });
});

describe('redaction of the new secrets', () => {
  it('masks the TLS passphrase, HTTP handler header values and URL passwords, keeping the rest', () => {
    write('k.pem', 'key');
    write('c.pem', 'cert');
    const configFile = write('orbit.json', {
      amqp: { url: 'amqps://u:amqp-pw@mq', tls: { cert: 'c.pem', key: 'k.pem', passphrase: 'tls-pw' } },
      lanes: [
        {
          name: 'http',
          handler: { url: 'https://hook:url-pw@worker/jobs', headers: { Authorization: { env: 'TOKEN' }, 'X-Tenant': 'acme-secret' } },
        },
        { name: 'module', handler: 'h.js' },
      ],
    });
    const cfg = load({ configFile, env: { TOKEN: 'Bearer env-secret' } });
    const redacted = redactConfig(cfg);
    const text = JSON.stringify(redacted);
    for (const secret of ['amqp-pw', 'tls-pw', 'url-pw', 'env-secret', 'acme-secret']) expect(text).not.toContain(secret);
    expect(redacted).toMatchObject({
      amqp: { urls: ['amqps://u:***@mq'], tls: { passphrase: '***', keyFile: join(dir, 'k.pem') } },
      lanes: [
        { httpHandler: { url: 'https://hook:***@worker/jobs', headers: { Authorization: '***', 'X-Tenant': '***' } } },
        { httpHandler: null, handler: join(dir, 'h.js') },
      ],
    });
    // The original is untouched.
    expect(cfg.amqp.tls.passphrase).toBe('tls-pw');
    expect(cfg.lanes[0]?.httpHandler?.headers['Authorization']).toEqual({ env: 'TOKEN', value: 'Bearer env-secret' });
  });

  it('leaves an unset passphrase null', () => {
    expect(redactConfig(load())).toMatchObject({ amqp: { tls: { passphrase: null } } });
  });
});

describe('delay levels within RabbitMQ TTL limits', () => {
  test('a top-level TTL above ten years is refused with the largest usable level count', () => {
    const binary = { 'delay.tolerance': '0' };
    const err = configError(() => loadConfig({ env: {}, overrides: { ...binary, 'delay.unit': '1m', 'delay.levels': '28' } }));
    expect(err.message).toMatch(/delay\.levels 28 with delay\.unit 1m .*top level.*use delay\.levels ≤ 23/);
    expect(() => loadConfig({ env: {}, overrides: { ...binary, 'delay.unit': '1m', 'delay.levels': '23' } })).not.toThrow();
    expect(() => loadConfig({ env: {}, overrides: { ...binary, 'delay.unit': '1s', 'delay.levels': '29' } })).not.toThrow();
    // The ladder's top rung holds the whole longest delay: one level fewer.
    const ladder = configError(() => loadConfig({ env: {}, overrides: { 'delay.tolerance': '2%', 'delay.unit': '1m', 'delay.levels': '23' } }));
    expect(ladder.message).toMatch(/delay\.levels 23 with delay\.unit 1m gives the top rung .*use delay\.levels ≤ 22/);
    expect(ladder.path).toBe('delay.levels');
  });

  test('delay.levels left unset follows the unit: --set delay.unit=1m works alone', () => {
    expect(loadConfig({ env: {}, overrides: { 'delay.unit': '1m', 'delay.tolerance': '2%' } }).delay).toMatchObject({ unitMs: 60_000, levels: 22 });
    expect(loadConfig({ env: {}, overrides: { 'delay.unit': '1m' } }).delay.levels).toBe(22);
    expect(loadConfig({ env: {}, overrides: { 'delay.unit': '1m', 'delay.tolerance': '0' } }).delay.levels).toBe(23);
    expect(loadConfig({ env: {}, overrides: { 'delay.unit': '1s' } }).delay.levels).toBe(28);
    expect(configError(() => loadConfig({ env: {}, overrides: { 'delay.unit': '4000d' } })).path).toBe('delay.unit');
  });

  test('delay.tolerance takes a fraction or a percentage, from 0 to 100 %', () => {
    const tolerance = (value: string) => loadConfig({ env: {}, overrides: { 'delay.tolerance': value } }).delay.tolerance;
    expect([tolerance('2%'), tolerance('0.02'), tolerance('0'), tolerance(' 1.5 % '), tolerance('100%')]).toEqual([0.02, 0.02, 0, 0.015, 1]);
    expect(loadConfig({ env: { ORBIT_DELAY_TOLERANCE: '5%' } }).delay.tolerance).toBe(0.05);
    for (const bad of ['2', '150%', '-1%', 'two percent', '']) {
      const err = configError(() => loadConfig({ env: {}, overrides: { 'delay.tolerance': bad } }));
      expect(err.path).toBe('delay.tolerance');
      expect(err.message).toMatch(/delay\.tolerance/);
    }
  });
});

describe('lanes[].tolerance', () => {
  test('a lane takes the namespace tolerance unless it sets its own, in the same forms; --set reaches it', () => {
    const cfg = load({ overrides: { lanes: '[{"name":"a"},{"name":"b","tolerance":"10%"},{"name":"c","tolerance":0.005}]' } });
    expect(cfg.lanes.map((l) => l.tolerance)).toEqual([0.02, 0.1, 0.005]);
    expect(load({ overrides: { lanes: '[{"name":"a"}]', 'lanes.a.tolerance': '25%' } }).lanes[0]!.tolerance).toBe(0.25);
    // The config view shows each lane's, as a percentage.
    expect((configView(cfg) as { lanes: Array<{ tolerance: unknown }> }).lanes.map((l) => l.tolerance)).toEqual(['2%', '10%', '0.5%']);
    // On the binary levels every lane is exact.
    expect(load({ overrides: { 'delay.tolerance': '0', lanes: '[{"name":"a"}]' } }).lanes[0]!.tolerance).toBe(0);
  });

  test.each([
    ['a lane on the ladder at 0', { 'delay.tolerance': '2%', lanes: '[{"name":"a","tolerance":0}]' }, /lanes\[0\]\.tolerance must be above 0 while delay\.tolerance is/],
    ['a lane tolerance on the binary levels', { 'delay.tolerance': '0', lanes: '[{"name":"a"},{"name":"b","tolerance":"5%"}]' }, /lanes\[1\]\.tolerance needs the delay ladder, but delay\.tolerance is 0/],
    ['a bare number meant as a percentage', { lanes: '[{"name":"a","tolerance":2}]' }, /lanes\[0\]\.tolerance must be a fraction from 0 to 1/],
    ['no number at all', { lanes: '[{"name":"a","tolerance":"fine"}]' }, /lanes\[0\]\.tolerance|tolerance/],
  ])('%s is a config error naming the key', (_what, overrides, message) => {
    const err = configError(() => load({ overrides }));
    expect(err.path).toMatch(/^lanes\[\d\]\.tolerance$|^lanes\.\d+\.tolerance$|^lanes$/);
    expect(err.message).toMatch(message);
  });
});

describe('amqp.management', () => {
  test('url: an http(s) URL from the file or ORBIT_AMQP_MANAGEMENT_URL, masked when shown; check: a boolean', () => {
    const cfg = loadConfig({ env: { ORBIT_AMQP_MANAGEMENT_URL: 'https://ops:mgmt-pw@mq:15671/', ORBIT_AMQP_MANAGEMENT_CHECK: 'false' } });
    expect(cfg.amqp.management).toEqual({ url: 'https://ops:mgmt-pw@mq:15671/', check: false });
    expect(JSON.stringify(redactConfig(cfg))).not.toContain('mgmt-pw');
    expect(JSON.stringify(configView(cfg))).not.toContain('mgmt-pw');
    // Empty means unset, as for the other URL keys: derived from the AMQP URLs.
    expect(loadConfig({ env: { ORBIT_AMQP_MANAGEMENT_URL: '' } }).amqp.management.url).toBeNull();
  });

  test('a URL that is not http(s) is refused by name, without echoing it', () => {
    for (const bad of ['amqp://u:secret@mq', 'not a url secret']) {
      const err = configError(() => loadConfig({ env: { ORBIT_AMQP_MANAGEMENT_URL: bad } }));
      expect(err.path).toBe('amqp.management.url');
      expect(err.message).not.toContain('secret');
    }
  });
});

describe('deadLetters.queueType', () => {
  it('is classic unless set; quorum by key or ORBIT_DEAD_LETTERS_QUEUE_TYPE; anything else names the key', () => {
    expect(load({ env: {} }).deadLetters.queueType).toBe('classic');
    expect(load({ overrides: { 'deadLetters.queueType': 'quorum' }, env: {} }).deadLetters.queueType).toBe('quorum');
    expect(load({ env: { ORBIT_DEAD_LETTERS_QUEUE_TYPE: 'quorum' } }).deadLetters.queueType).toBe('quorum');
    const err = configError(() => load({ overrides: { 'deadLetters.queueType': 'stream' }, env: {} }));
    expect(err.message).toContain('deadLetters.queueType');
  });
});

describe('cancel.retention', () => {
  it('takes a duration and refuses one under a minute, naming the key', () => {
    expect(load({ overrides: { 'cancel.retention': '2h' }, env: {} }).cancel.retentionMs).toBe(7_200_000);
    expect(load({ env: { ORBIT_CANCEL_RETENTION: '30d' } }).cancel.retentionMs).toBe(30 * 86_400_000);
    const err = configError(() => load({ overrides: { 'cancel.retention': '30s' }, env: {} }));
    expect(err.message).toContain('cancel.retention must be at least 1m');
  });

  it('refuses one under 4 × delay.unit: a long delay travels in hops of at most half the retention', () => {
    const err = configError(() => load({ overrides: { 'cancel.retention': '3m', 'delay.unit': '1m' }, env: {} }));
    expect(err.path).toBe('cancel.retention');
    expect(err.message).toContain('cancel.retention must be at least 4 × delay.unit (4m');
    expect(load({ overrides: { 'cancel.retention': '4m', 'delay.unit': '1m' }, env: {} }).cancel.retentionMs).toBe(240_000);
  });
});
