import type { IncomingMessage } from 'node:http';
import { presentedToken, sessionCookie, tokenMatches, UI_COOKIE } from '../../src/http/ui/auth';
import { CsrfGuard } from '../../src/http/ui/csrf';

const req = (method: string, headers: Record<string, string>): IncomingMessage => ({ method, headers }) as unknown as IncomingMessage;
const TOKEN = 'a3f9c2e1b7d04f6a9e8c1b2d3f4a5b6c';

describe('console token', () => {
  it('matches only the exact token', () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches(`${TOKEN}x`, TOKEN)).toBe(false);
    expect(tokenMatches(TOKEN.slice(1), TOKEN)).toBe(false);
    expect(tokenMatches('', TOKEN)).toBe(false);
    expect(tokenMatches(undefined, TOKEN)).toBe(false);
  });

  it('is read from Authorization: Bearer, else from the cookie', () => {
    expect(presentedToken(req('GET', { authorization: `Bearer ${TOKEN}` }))).toBe(TOKEN);
    expect(presentedToken(req('GET', { cookie: `a=b; ${UI_COOKIE}=${TOKEN}; c=d` }))).toBe(TOKEN);
    // A wrong Authorization is not rescued by a right cookie: the header is what was meant.
    expect(presentedToken(req('GET', { authorization: 'Basic abc', cookie: `${UI_COOKIE}=${TOKEN}` }))).toBeUndefined();
    expect(presentedToken(req('GET', {}))).toBeUndefined();
  });

  it('sets an HttpOnly, SameSite=Strict session cookie scoped to /ui', () => {
    expect(sessionCookie(TOKEN, false)).toBe(`orbit_ui=${TOKEN}; HttpOnly; SameSite=Strict; Path=/ui`);
    expect(sessionCookie(TOKEN, true)).toMatch(/; Secure$/);
  });
});

describe('CsrfGuard', () => {
  const guard = new CsrfGuard();
  const ok = { 'x-orbit-csrf': guard.token, host: 'orbit:9464' };

  it('lets a POST with the header and the same origin act', () => {
    expect(guard.refuse(req('POST', ok))).toBeNull();
    expect(guard.refuse(req('POST', { ...ok, origin: 'http://orbit:9464' }))).toBeNull();
  });

  it('refuses other methods, a missing or wrong header, and another origin', () => {
    expect(guard.refuse(req('GET', ok))).toBe('actions are POST only');
    expect(guard.refuse(req('POST', { host: 'orbit:9464' }))).toContain('x-orbit-csrf');
    expect(guard.refuse(req('POST', { ...ok, 'x-orbit-csrf': 'nope' }))).toContain('x-orbit-csrf');
    expect(guard.refuse(req('POST', { ...ok, origin: 'http://evil.example' }))).toContain('cross-origin');
    expect(guard.refuse(req('POST', { ...ok, origin: 'null' }))).toContain('Origin');
  });

  it('has a different token in every process (every guard)', () => {
    expect(new CsrfGuard().token).not.toBe(guard.token);
    expect(guard.token.length).toBeGreaterThanOrEqual(32);
  });
});
