import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { loadConfig, redactConfig, type ConfigSources, type ResolvedConfig } from '../../src/config';
import { configView } from '../../src/config/view';
import { configError } from '../helpers/errors';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'orbit-ui-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const TOKEN = 'a3f9c2e1b7d04f6a9e8c1b2d3f4a5b6c';
const OTHER = 'ffffffffffffffffffffffffffffffff';

function load(sources: ConfigSources = {}): ResolvedConfig {
  return loadConfig({ env: {}, cwd: dir, ...sources });
}

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('http.ui', () => {
  it('is off and read-only by default, with no token', () => {
    expect(load().http.ui).toEqual({ enabled: false, readOnly: true, tokenFile: null, token: null });
  });

  it('maps ORBIT_UI_ENABLED, ORBIT_UI_READ_ONLY and ORBIT_UI_TOKEN_FILE', () => {
    write('token', `${TOKEN}\n`);
    const cfg = load({ env: { ORBIT_UI_ENABLED: 'true', ORBIT_UI_READ_ONLY: 'false', ORBIT_UI_TOKEN_FILE: 'token' } });
    expect(cfg.http.ui).toMatchObject({ enabled: true, readOnly: false, tokenFile: join(dir, 'token') });
    expect(cfg.http.ui.token?.reveal()).toBe(TOKEN); // trimmed: files end with a newline
  });

  it('takes the token from ORBIT_UI_TOKEN when no file is set', () => {
    const cfg = load({ env: { ORBIT_UI_ENABLED: 'true', ORBIT_UI_TOKEN: TOKEN } });
    expect(cfg.http.ui.token?.reveal()).toBe(TOKEN);
  });

  it('prefers the token file over ORBIT_UI_TOKEN', () => {
    const file = write('token', TOKEN);
    const cfg = load({ env: { ORBIT_UI_TOKEN: OTHER }, overrides: { 'http.ui.tokenFile': file, 'http.ui.enabled': 'true' } });
    expect(cfg.http.ui.token?.reveal()).toBe(TOKEN);
  });

  it('reads the token file relative to the config file', () => {
    write('ui-token', TOKEN);
    const configFile = write('orbit.json', JSON.stringify({ http: { ui: { enabled: true, tokenFile: 'ui-token' } } }));
    expect(load({ configFile }).http.ui.token?.reveal()).toBe(TOKEN);
  });

  it('refuses enabled without a token, naming http.ui.tokenFile and the reason', () => {
    const err = configError(() => load({ env: { ORBIT_UI_ENABLED: 'true' } }));
    expect(err.path).toBe('http.ui.tokenFile');
    expect(err.message).toContain('http.ui.enabled is true but no console token is set');
    expect(err.message).toContain('ORBIT_UI_TOKEN');
  });

  it('refuses an unreadable token file, a short token and whitespace inside, never showing the token', () => {
    expect(configError(() => load({ env: { ORBIT_UI_TOKEN_FILE: 'nope' } })).message).toBe(
      `http.ui.tokenFile cannot be read: ${join(dir, 'nope')} (ENOENT)`,
    );
    const short = configError(() => load({ env: { ORBIT_UI_TOKEN: 'hunter2' } }));
    expect(short.path).toBe('http.ui.tokenFile');
    expect(short.message).toContain('at least 16 characters (got 7)');
    expect(short.message).not.toContain('hunter2');
    const spaced = configError(() => load({ env: { ORBIT_UI_TOKEN: `${TOKEN} ${TOKEN}` } }));
    expect(spaced.message).toContain('must not contain whitespace');
    expect(spaced.message).not.toContain(TOKEN);
  });

  it('refuses enabled with http.port 0 (no HTTP server to serve it)', () => {
    const err = configError(() => load({ env: { ORBIT_UI_ENABLED: 'true', ORBIT_UI_TOKEN: TOKEN, ORBIT_HTTP_PORT: '0' } }));
    expect(err.message).toBe('http.ui.enabled is true but http.port is 0, which turns the HTTP server (and so the console) off');
  });

  it('refuses a boolean it cannot read', () => {
    expect(configError(() => load({ env: { ORBIT_UI_READ_ONLY: 'no' } })).message).toContain('http.ui.readOnly');
  });

  it('never shows the token: orbit config, redactConfig, JSON logs and inspect', () => {
    const cfg = load({ env: { ORBIT_UI_ENABLED: 'true', ORBIT_UI_TOKEN: TOKEN } });
    expect(JSON.stringify(configView(cfg))).not.toContain(TOKEN);
    expect(configView(cfg)).toMatchObject({ http: { ui: { enabled: true, readOnly: true, tokenFile: null } } });
    expect(JSON.stringify(redactConfig(cfg))).not.toContain(TOKEN);
    expect(JSON.stringify(cfg)).not.toContain(TOKEN);
    expect(JSON.stringify(cfg.http.ui.token)).toBe('"***"');
    expect(inspect(cfg, { depth: 10 })).not.toContain(TOKEN);
    expect(`${String(cfg.http.ui.token)}`).toBe('***');
  });
});
