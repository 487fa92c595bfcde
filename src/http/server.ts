import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { ConfigError, errnoCode, errorMessage } from '../errors';
import type { Logger } from '../logging/logger';
import { UiConsole } from './ui';

export interface HttpEndpoints {
  readonly registry: Registry;
  /** Connected, topology asserted, consuming — or the reason not. */
  readonly readiness: () => { ready: boolean; reason?: string };
  /** The operator console under `/ui/` (`http.ui.enabled`), behind its own token; absent: 404 there. */
  readonly ui?: UiConsole;
}

/**
 * `/metrics` (Prometheus text format), `/healthz` (the process answers) and `/readyz`
 * (503 with a reason while not ready, so an orchestrator holds traffic and alerts fire),
 * unauthenticated as ever; and when given one, the console under `/ui/` (its own token).
 */
export class HttpServer {
  private server: Server | undefined;

  constructor(
    private readonly endpoints: HttpEndpoints,
    private readonly logger: Logger,
  ) {}

  /** Listens; resolves with the bound port (useful when configured as an ephemeral port). */
  async listen(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      // The console takes its own requests, POSTs included (its actions); nothing else acts.
      const ui = this.endpoints.ui;
      if (ui && UiConsole.owns(path)) {
        try {
          ui.handle(req, res);
        } catch (err) {
          // A request must never take the daemon down with it.
          this.logger.warn({ err: errorMessage(err) }, 'ui request failed');
          if (!res.headersSent) json(res, 500, { error: 'internal error' });
        }
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        this.endpoints.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.endpoints.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
        );
      } else if (path === '/healthz') {
        json(res, 200, { status: 'ok' });
      } else if (path === '/readyz') {
        const r = this.endpoints.readiness();
        json(res, r.ready ? 200 : 503, r.ready ? { status: 'ready' } : { status: 'not ready', reason: r.reason });
      } else {
        json(res, 404, { error: 'not found', endpoints: ['/metrics', '/healthz', '/readyz', ...(ui ? ['/ui/'] : [])] });
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const bound = typeof address === 'object' && address ? address.port : port;
    this.logger.info({ host, port: bound }, `http listening (/metrics, /healthz, /readyz${this.endpoints.ui ? ', /ui/' : ''})`);
    return bound;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function json(res: import('node:http').ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/**
 * A port or address the server cannot take is a setting to change, so it is a ConfigError
 * (exit 2: restarting would clash again) that names the key and the way out.
 */
function listenError(err: Error, host: string, port: number): Error {
  const code = errnoCode(err);
  if (code === 'EADDRINUSE') {
    return new ConfigError(
      `http.port: ${host}:${port} is already in use (another orbit daemon on this host?): set http.port (ORBIT_HTTP_PORT) to a free port, or 0 to run without the HTTP server`,
      { path: 'http.port', cause: err },
    );
  }
  if (code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    return new ConfigError(`http.host/http.port: cannot listen on ${host}:${port} (${code}): set http.host (ORBIT_HTTP_HOST) and http.port (ORBIT_HTTP_PORT)`, {
      path: 'http.port',
      cause: err,
    });
  }
  return err;
}
