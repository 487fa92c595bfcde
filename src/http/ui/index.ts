import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { ResolvedConfig } from '../../config/types';
import { ConfigError, errorMessage } from '../../errors';
import type { Logger } from '../../logging/logger';
import { handleApi, json } from './api';
import { presentedToken, sessionCookie, tokenMatches } from './auth';
import { BrokerView } from './broker-view';
import { CsrfGuard } from './csrf';
import { PAGES, SECURITY_HEADERS, sendAsset, sendPage, sendUnauthorizedPage } from './pages';

export { UI_COOKIE } from './auth';
export { CSRF_HEADER } from './csrf';
export { PAGE_DEFAULT, PAGE_END_MAX, SCAN_MAX } from './dead-letters';

export interface UiConsoleOptions {
  readonly config: ResolvedConfig;
  readonly logger: Logger;
  /** The daemon's metrics, for rates; absent for `orbit ui`. */
  readonly registry?: Registry;
  /** @defaultValue `config.http.ui.readOnly` */
  readonly readOnly?: boolean;
}

/**
 * The operator console (README "Console"): pages under `/ui/`, JSON under `/ui/api/`, all
 * behind the access token; state read from the broker, so every daemon of a fleet shows the
 * same queues.
 */
export class UiConsole {
  private readonly token: string;
  private readonly csrf = new CsrfGuard();
  private readonly broker: BrokerView;
  readonly readOnly: boolean;

  constructor(private readonly options: UiConsoleOptions) {
    const token = options.config.http.ui.token;
    if (token === null) {
      throw new ConfigError('http.ui.tokenFile: the console needs a token: set http.ui.tokenFile (ORBIT_UI_TOKEN_FILE) or ORBIT_UI_TOKEN', {
        path: 'http.ui.tokenFile',
      });
    }
    this.token = token.reveal();
    this.readOnly = options.readOnly ?? options.config.http.ui.readOnly;
    this.broker = new BrokerView(options.config, options.logger, options.registry);
  }

  /** Whether `path` is the console's: the server hands those requests to `handle`, any method. */
  static owns(path: string): boolean {
    return path === '/ui' || path.startsWith('/ui/');
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    const isApi = path.startsWith('/ui/api/');
    if (req.method !== 'GET' && req.method !== 'HEAD' && !(req.method === 'POST' && isApi)) {
      res.writeHead(405, { allow: isApi ? 'GET, HEAD, POST' : 'GET, HEAD' }).end();
      return;
    }
    if (path === '/ui') {
      res.writeHead(301, { location: '/ui/' }).end();
      return;
    }
    // A browser's first visit: the token moves from the URL into an HttpOnly cookie, and the
    // redirect takes it out of the address bar and history.
    const fromQuery = url.searchParams.get('token');
    if (fromQuery !== null && !isApi) {
      if (!tokenMatches(fromQuery, this.token)) return this.unauthorized(res, false);
      // Behind a TLS-terminating proxy the browser speaks https: the cookie is then Secure too
      // (a forged header could only withhold the cookie from plain http, never expose it).
      const secure = req.headers['x-forwarded-proto'] === 'https';
      res.writeHead(303, { ...SECURITY_HEADERS, 'set-cookie': sessionCookie(this.token, secure), location: '/ui/' }).end();
      return;
    }
    if (!tokenMatches(presentedToken(req), this.token)) return this.unauthorized(res, isApi);

    if (isApi) {
      handleApi({ broker: this.broker, csrf: this.csrf, readOnly: this.readOnly }, req, res, path, url.searchParams).catch((err: unknown) => {
        this.options.logger.warn({ err: errorMessage(err) }, 'ui api failed');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
      });
      return;
    }
    if (sendAsset(res, path)) return;
    if (PAGES[path]) return sendPage(res, path, this.options.config.namespace, this.csrf.token, this.readOnly);
    res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  }

  private unauthorized(res: ServerResponse, api: boolean): void {
    if (api) {
      res.setHeader('www-authenticate', 'Bearer realm="orbit console"');
      json(res, 401, { error: 'missing or wrong console token', code: 'UI_UNAUTHORIZED' });
    } else {
      sendUnauthorizedPage(res);
    }
  }

  /** Opens the broker session now (it opens at the first request otherwise). */
  connect(): Promise<void> {
    return this.broker.connect();
  }

  close(): Promise<void> {
    return this.broker.close();
  }
}
