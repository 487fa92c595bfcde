import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The console's session cookie. Stable: renaming it logs every operator out. */
export const UI_COOKIE = 'orbit_ui';

/**
 * Whether `given` is the token. Both sides are hashed first so that `timingSafeEqual` compares
 * equal lengths and the comparison time says nothing about the token's length or prefix.
 */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined || given === '') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** The token a request presents: `Authorization: Bearer …`, else the console cookie. */
export function presentedToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return match?.[1];
  }
  return cookie(req, UI_COOKIE);
}

/** One cookie's value from the request's `Cookie` header. */
export function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * The `Set-Cookie` value for a browser's first visit with `?token=`: HttpOnly (page scripts
 * never see it), SameSite=Strict (other sites' requests do not carry it) and scoped to `/ui`.
 * No Max-Age: a session cookie, gone when the browser closes.
 */
export function sessionCookie(token: string, secure: boolean): string {
  return `${UI_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/ui${secure ? '; Secure' : ''}`;
}
