import type { ServerResponse } from 'node:http';
import { CLIENT_SCRIPT } from './client-script';
import { STYLES } from './styles';

/** The console's pages: path under /ui/ → page key and title. The pages are one shell each; app.js fills them from /ui/api/. */
export const PAGES: Readonly<Record<string, { readonly key: string; readonly title: string }>> = {
  '/ui/': { key: 'overview', title: 'Overview' },
  '/ui/schedule': { key: 'schedule', title: 'Schedule' },
  '/ui/dead-letters': { key: 'dead-letters', title: 'Dead letters' },
  '/ui/config': { key: 'config', title: 'Config' },
};

/**
 * Sent with every console response. The policy allows only the console's own script and
 * style (no inline script, so an injected message body could not run), no framing, and no
 * Referer (the first visit's URL carries the token).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export function sendPage(res: ServerResponse, path: string, namespace: string, csrf: string, readOnly: boolean): void {
  const page = PAGES[path]!;
  const nav = Object.entries(PAGES)
    .map(([href, p]) => `<a href="${href}"${p.key === page.key ? ' aria-current="page"' : ''}>${p.title}</a>`)
    .join('');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="orbit-csrf" content="${escapeHtml(csrf)}">
<meta name="orbit-read-only" content="${readOnly}">
<title>${page.title} · orbit ${escapeHtml(namespace)}</title>
<link rel="stylesheet" href="/ui/app.css">
</head>
<body data-page="${page.key}">
<header><strong>orbit</strong> <span class="ns">${escapeHtml(namespace)}</span><nav>${nav}</nav>${readOnly ? '<span class="badge">read-only</span>' : ''}</header>
<main id="app"><p class="muted">Loading…</p></main>
<script src="/ui/app.js"></script>
</body>
</html>
`;
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' }).end(html);
}

export function sendAsset(res: ServerResponse, path: string): boolean {
  if (path === '/ui/app.js') res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/javascript; charset=utf-8' }).end(CLIENT_SCRIPT);
  else if (path === '/ui/app.css') res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/css; charset=utf-8' }).end(STYLES);
  else return false;
  return true;
}

/** A plain page for a browser without (or with a wrong) token. */
export function sendUnauthorizedPage(res: ServerResponse): void {
  res
    .writeHead(401, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'www-authenticate': 'Bearer realm="orbit console"' })
    .end(
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>orbit console: token needed</title></head><body>' +
        '<h1>401: token needed</h1><p>Open <code>/ui/?token=…</code> with the console token (<code>http.ui.tokenFile</code> or ' +
        '<code>ORBIT_UI_TOKEN</code>), or send <code>Authorization: Bearer …</code>.</p></body></html>\n',
    );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
