import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The header an action must carry, holding the page's CSRF token. */
export const CSRF_HEADER = 'x-orbit-csrf';

/**
 * Cross-site request forgery protection for the console's actions. The session cookie is
 * SameSite=Strict already; on top of that every action must
 * - be a POST (a link or an image cannot make one),
 * - carry `X-Orbit-CSRF` equal to this process's random token, which only a page served with
 *   the access token embeds (a custom header also forces a CORS preflight, which the server
 *   never grants), and
 * - when the browser sends `Origin`, come from the console's own origin.
 * The token is per process: a restart invalidates open pages, which then reload.
 */
export class CsrfGuard {
  readonly token = randomBytes(24).toString('base64url');

  /** Null when the request may act; else why not (for a 403). */
  refuse(req: IncomingMessage): string | null {
    if (req.method !== 'POST') return 'actions are POST only';
    const given = req.headers[CSRF_HEADER];
    if (typeof given !== 'string' || !sameText(given, this.token)) return `missing or wrong ${CSRF_HEADER} header (reload the page)`;
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== 'null') {
      let host: string;
      try {
        host = new URL(origin).host;
      } catch {
        return 'unreadable Origin header';
      }
      if (host !== req.headers.host) return `cross-origin request from ${origin} refused`;
    } else if (origin === 'null') {
      return 'opaque Origin refused';
    }
    return null;
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
