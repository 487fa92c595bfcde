import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config';
import { HttpServer } from '../../src/http/server';
import { UiConsole } from '../../src/http/ui';
import { createLogger } from '../../src/logging/logger';

const TOKEN = 'unit-test-token-0123456789abcdef';

/** A console and server with no broker behind them: everything here is refused or served before one is needed. */
async function serve(readOnly: boolean): Promise<{ base: string; close: () => Promise<void> }> {
  const config = loadConfig({
    env: { ORBIT_UI_TOKEN: TOKEN },
    overrides: { 'http.ui.enabled': 'true', 'http.ui.readOnly': String(readOnly), lanes: '[{"name":"a"}]', 'log.level': 'silent' },
  });
  const ui = new UiConsole({ config, logger: createLogger('silent') });
  const server = new HttpServer({ registry: new Registry(), readiness: () => ({ ready: true }), ui }, createLogger('silent'));
  const port = await server.listen('127.0.0.1', 0);
  return {
    base: `http://127.0.0.1:${port}`,
    close: async () => {
      await server.close();
      await ui.close();
    },
  };
}

const bearer = { authorization: `Bearer ${TOKEN}` };

describe('the console on the HTTP server', () => {
  let s: { base: string; close: () => Promise<void> };
  afterEach(() => s.close());

  it('keeps /metrics and /healthz open and still refuses POST there', async () => {
    s = await serve(true);
    expect((await fetch(`${s.base}/healthz`)).status).toBe(200);
    expect((await fetch(`${s.base}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('answers 401 without the token (JSON for the API, a page otherwise) and redirects /ui to /ui/', async () => {
    s = await serve(true);
    const api = await fetch(`${s.base}/ui/api/config`);
    expect(api.status).toBe(401);
    expect(api.headers.get('content-type')).toContain('application/json');
    const page = await fetch(`${s.base}/ui/`, { headers: { cookie: 'orbit_ui=nope' } });
    expect(page.status).toBe(401);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect((await fetch(`${s.base}/ui`, { redirect: 'manual' })).headers.get('location')).toBe('/ui/');
    const proxied = await fetch(`${s.base}/ui/?token=${TOKEN}`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'https' } });
    expect(proxied.status).toBe(303);
    expect(proxied.headers.get('set-cookie')).toBe(`orbit_ui=${TOKEN}; HttpOnly; SameSite=Strict; Path=/ui; Secure`);
    expect((await fetch(`${s.base}/ui/api/config`, { method: 'PUT', headers: bearer })).status).toBe(405);
  });

  it('serves pages with a CSRF token, a strict CSP and never the access token', async () => {
    s = await serve(false);
    const res = await fetch(`${s.base}/ui/dead-letters`, { headers: bearer });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    expect(html).toMatch(/<meta name="orbit-csrf" content="[\w-]{32}">/);
    expect(html).toContain('<meta name="orbit-read-only" content="false">');
    expect(html).not.toContain(TOKEN);
    expect((await fetch(`${s.base}/ui/app.js`, { headers: bearer })).headers.get('content-type')).toContain('javascript');
    const config = await (await fetch(`${s.base}/ui/api/config`, { headers: bearer })).text();
    expect(config).not.toContain(TOKEN);
    expect(JSON.parse(config)).toMatchObject({ http: { ui: { enabled: true, readOnly: false, tokenFile: null } } });
  });

  it('refuses actions when read-only (403) and without the CSRF header (403)', async () => {
    s = await serve(true);
    const ro = await fetch(`${s.base}/ui/api/dead/purge`, { method: 'POST', headers: bearer, body: '{}' });
    expect(ro.status).toBe(403);
    expect(await ro.json()).toMatchObject({ code: 'UI_READ_ONLY' });
    await s.close();
    s = await serve(false);
    const csrf = await fetch(`${s.base}/ui/api/dead/purge`, { method: 'POST', headers: bearer, body: '{}' });
    expect(csrf.status).toBe(403);
    expect(await csrf.json()).toMatchObject({ code: 'UI_CSRF' });
  });
});

it('a console without a token cannot be made', () => {
  const config = loadConfig({ env: {}, overrides: { 'log.level': 'silent' } });
  expect(() => new UiConsole({ config, logger: createLogger('silent') })).toThrow(/http.ui.tokenFile/);
});
