/**
 * The operator console (README "Console") in headless Chromium against the real broker: the
 * daemon serves it with actions enabled, and `orbit ui`'s pieces (console + HTTP server, no
 * daemon) serve it read-only on the same namespace. One browser for the file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Registry } from 'prom-client';
import { UnrecoverableError, type Handler, type ResolvedConfig } from '../../src';
import { HttpServer } from '../../src/http/server';
import { UiConsole } from '../../src/http/ui';
import { createLogger } from '../../src/logging/logger';
import { deleteNamespace, queueDepth, randomNamespace, testConfig, withChannel } from '../helpers/broker';
import { chromiumAvailable, launchChromium } from '../helpers/chromium';
import { connectTestScheduler, startTestDaemon } from '../helpers/harness';
import { freePort } from '../helpers/private-broker';
import { Cleanup } from '../helpers/recorder';
import { waitFor } from '../helpers/wait';

const TOKEN = 'ui-test-token-0123456789abcdef';
const run = chromiumAvailable() ? describe : describe.skip;

run('operator console', () => {
  const cleanup = new Cleanup();
  let browser: Browser;
  let dir: string;
  let ns: string;
  let config: ResolvedConfig;
  let base: string;
  let readOnlyBase: string;
  /** Runs of the failing lane's handler, by message id. */
  const runs = new Map<string, number>();

  const failOnce: Handler = (m) => {
    const n = (runs.get(m.id) ?? 0) + 1;
    runs.set(m.id, n);
    if (n === 1) throw new UnrecoverableError(`cannot charge card for ${m.id}`, { code: 'CARD_DECLINED' });
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orbit-ui-'));
    const tokenFile = join(dir, 'ui-token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    ns = randomNamespace('ui');
    cleanup.add(() => deleteNamespace(ns));
    const port = await freePort();
    config = testConfig(ns, {
      lanes: [{ name: 'billing' }, { name: 'emails' }],
      http: { host: '127.0.0.1', port, ui: { enabled: true, readOnly: false, tokenFile } },
    });
    await startTestDaemon(cleanup, { config, handlers: { billing: failOnce, emails: () => undefined } });
    base = `http://127.0.0.1:${port}`;

    // What `orbit ui` runs: the console and the HTTP server, no daemon; read-only as configured.
    const ui = new UiConsole({ config: { ...config, http: { ...config.http, ui: { ...config.http.ui, readOnly: true } } }, logger: createLogger('silent') });
    const server = new HttpServer({ registry: new Registry(), readiness: () => ({ ready: true }), ui }, createLogger('silent'));
    cleanup.add(() => ui.close());
    cleanup.add(() => server.close());
    await ui.connect();
    readOnlyBase = `http://127.0.0.1:${await server.listen('127.0.0.1', 0)}`;

    browser = await launchChromium();
    cleanup.add(() => browser.close());
  }, 60_000);

  afterAll(async () => {
    await cleanup.run();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  /** A fresh browser context that has made its first visit with ?token= (the cookie set). */
  async function signedIn(at = base): Promise<Page> {
    const context = await browser.newContext();
    cleanup.add(() => context.close());
    const page = await context.newPage();
    await page.goto(`${at}/ui/?token=${TOKEN}`);
    return page;
  }

  test('?token= sets an HttpOnly cookie and redirects to /ui/', async () => {
    const res = await fetch(`${base}/ui/?token=${TOKEN}`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/ui/');
    expect(res.headers.get('set-cookie')).toBe(`orbit_ui=${TOKEN}; HttpOnly; SameSite=Strict; Path=/ui`);
    const page = await signedIn();
    expect(new URL(page.url()).pathname).toBe('/ui/');
    expect(page.url()).not.toContain('token');
  });

  test('a wrong or missing token gets 401; /metrics and /healthz stay open', async () => {
    expect((await fetch(`${base}/ui/`)).status).toBe(401);
    expect((await fetch(`${base}/ui/?token=wrong-token-wrong-token`, { redirect: 'manual' })).status).toBe(401);
    const api = await fetch(`${base}/ui/api/overview`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } });
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ code: 'UI_UNAUTHORIZED' });
    expect((await fetch(`${base}/ui/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    const context = await browser.newContext();
    cleanup.add(() => context.close());
    const page = await context.newPage();
    const response = await page.goto(`${base}/ui/`);
    expect(response?.status()).toBe(401);
    await expect(page.textContent('h1')).resolves.toContain('401');
  });

  test('the overview shows the configured lanes', async () => {
    const page = await signedIn();
    const lanes = page.locator('table tbody tr td:first-child');
    await lanes.first().waitFor();
    expect(await lanes.allTextContents()).toEqual(['billing', 'emails']);
    await page.locator('[data-card="Dead"]').waitFor();
  });

  test('a failed message shows on the dead-letters page; search finds it; Replay runs it again', async () => {
    const scheduler = await connectTestScheduler(cleanup, config);
    const decoy = await scheduler.publish('billing', { order: 1 });
    const { id } = await scheduler.publish('billing', { order: 2, card: '4242' });
    await waitFor(async () => (await queueDepth(`${ns}.dead`)) === 2, 10_000, 'two dead letters');

    const page = await signedIn();
    await page.goto(`${base}/ui/dead-letters`);
    const row = page.locator('tbody tr', { hasText: id });
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain('CARD_DECLINED');
    await expect(row.textContent()).resolves.toContain(`cannot charge card for ${id}`);
    await expect(page.textContent('#summary')).resolves.toContain('2 message(s)');

    await page.getByLabel('Search by id').fill(id);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/id=/);
    await page.locator('tbody tr', { hasText: id }).waitFor();
    expect(await page.locator('tbody tr').count()).toBe(1);

    await page.getByRole('link', { name: id }).click();
    await page.locator('#body').waitFor();
    expect(JSON.parse((await page.textContent('#body')) ?? '')).toEqual({ order: 2, card: '4242' });
    await expect(page.textContent('#headers')).resolves.toContain('x-orbit-error-code');

    // Looking cost nothing: both are still there, in order.
    expect(await queueDepth(`${ns}.dead`)).toBe(2);

    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      // The page may close first (the test ends while its alert is still up): never an unhandled rejection.
      d.accept().catch(() => undefined);
    });
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    await waitFor(() => runs.get(id) === 2, 10_000, 'the replayed message to run again');
    expect(dialogs[0]).toBe(`confirm: Replay message ${id} to lane billing?`);
    await waitFor(async () => (await queueDepth(`${ns}.dead`)) === 1, 5_000, 'one dead letter left');
    expect(runs.get(decoy.id)).toBe(1);
    // Its alert answered, the page reloads itself (keeping the search): the test ends after that.
    await page.waitForURL((u) => u.searchParams.get('queue') === 'dead' && u.searchParams.get('id') === id);
  }, 40_000);

  test('read-only: no action buttons, and the API refuses actions with 403', async () => {
    const page = await signedIn(readOnlyBase);
    await page.goto(`${readOnlyBase}/ui/dead-letters`);
    await page.locator('#summary').waitFor();
    await expect(page.locator('.badge').textContent()).resolves.toBe('read-only');
    for (const name of ['Replay selected', 'Replay all matching', 'Purge matching']) {
      expect(await page.getByRole('button', { name }).count()).toBe(0);
    }
    await page.locator('a.id').first().click();
    await page.locator('#body').waitFor();
    expect(await page.getByRole('button', { name: 'Replay', exact: true }).count()).toBe(0);
    const res = await fetch(`${readOnlyBase}/ui/api/dead/replay`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ queue: 'dead' }),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'UI_READ_ONLY' });
    // orbit ui has no daemon: rates are n/a, depths come from the broker all the same.
    const overview = (await (await fetch(`${readOnlyBase}/ui/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      rates: string;
      dead: number;
    };
    expect(overview).toMatchObject({ rates: 'n/a', dead: 1 });
    // The Unroutable tab: the same page over <ns>.unroutable.
    await page.getByRole('link', { name: 'Unroutable' }).click();
    await page.waitForURL(/queue=unroutable/);
    await expect(page.locator('#summary').textContent()).resolves.toContain(`${ns}.unroutable: 0 message(s)`);
  });

  test('an action without the CSRF header, or from another origin, gets 403', async () => {
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ queue: 'dead' });
    const bare = await fetch(`${base}/ui/api/dead/purge`, { method: 'POST', headers, body });
    expect(bare.status).toBe(403);
    expect(await bare.json()).toMatchObject({ code: 'UI_CSRF' });
    const page = await signedIn();
    const csrf = await page.getAttribute('meta[name="orbit-csrf"]', 'content');
    const foreign = await fetch(`${base}/ui/api/dead/purge`, { method: 'POST', headers: { ...headers, 'x-orbit-csrf': csrf ?? '', origin: 'http://evil.example' }, body });
    expect(foreign.status).toBe(403);
    expect(await queueDepth(`${ns}.dead`)).toBe(1); // nothing purged
    const get = await fetch(`${base}/ui/api/dead/purge`, { headers });
    expect(get.status).toBe(404);
  });

  test('the schedule page charts the forecast and lists the delay queues', async () => {
    // On the ladder (the default) a rung exists once something waits in it.
    const scheduler = await connectTestScheduler(cleanup, config);
    await scheduler.publish('emails', { later: true }, { delay: '1m' });
    const page = await signedIn();
    await page.goto(`${base}/ui/schedule`);
    await page.locator('svg.chart').waitFor();
    expect(await page.locator('svg.chart rect').count()).toBe(4);
    await expect(page.locator('svg.chart').textContent()).resolves.toContain('next week');
    const rung = page.locator('#queues table tbody tr', { hasText: `${ns}.wait:` });
    await rung.first().waitFor();
    await expect(rung.first().locator('td').nth(1).textContent()).resolves.toBe('1');
  });

  test('bounded reads: with 12,000 dead letters a page reads 50, a search stops at 10,000 and says so; order and depth unchanged', async () => {
    const big = randomNamespace('ui-big');
    cleanup.add(() => deleteNamespace(big));
    const bigConfig = testConfig(big, { lanes: [{ name: 'billing' }], http: { ui: { tokenFile: join(dir, 'ui-token') } } });
    await connectTestScheduler(cleanup, bigConfig); // declares the namespace
    const COUNT = 12_000;
    await withChannel(async (ch) => {
      for (let i = 0; i < COUNT; i++) {
        ch.sendToQueue(`${big}.dead`, Buffer.from(`{"n":${i}}`), {
          messageId: `m-${i}`,
          headers: { 'x-orbit-dead-lane': 'billing', 'x-orbit-error-code': 'BOOM', 'x-orbit-dead-at': Date.now() },
        });
        if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
      }
    });
    await waitFor(async () => (await queueDepth(`${big}.dead`)) === COUNT, 20_000, 'the dead letters');
    const ui = new UiConsole({ config: bigConfig, logger: createLogger('silent'), readOnly: false });
    const server = new HttpServer({ registry: new Registry(), readiness: () => ({ ready: true }), ui }, createLogger('silent'));
    cleanup.add(() => ui.close());
    cleanup.add(() => server.close());
    const at = `http://127.0.0.1:${await server.listen('127.0.0.1', 0)}`;
    const api = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
      const res = await fetch(`${at}/ui/api/${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const ids = (body: Record<string, unknown>) => (body.rows as { id: string }[]).map((r) => r.id);

    await api('session'); // connects
    const started = Date.now();
    const first = await api('dead?queue=dead&offset=0&limit=50');
    const took = Date.now() - started;
    expect(first.body).toMatchObject({ total: COUNT, scanned: 50, truncated: false });
    expect(ids(first.body)).toEqual(Array.from({ length: 50 }, (_, i) => `m-${i}`));
    expect(took).toBeLessThan(1000);

    const second = await api('dead?offset=950&limit=200');
    expect(second.body).toMatchObject({ offset: 950, limit: 50, scanned: 1000 }); // offset + limit capped at 1,000
    expect(ids(second.body)[0]).toBe('m-950');

    const missing = await api('dead?id=not-there');
    expect(missing.body).toMatchObject({ scanned: 10_000, truncated: true, rows: [] });
    expect(missing.body.bound).toBe('search looks at the first 10,000 messages only');
    const searchTook = Date.now() - started;
    const found = await api('dead/message?id=m-500');
    expect(found.body).toMatchObject({ message: { row: { id: 'm-500', lane: 'billing', code: 'BOOM' }, bodyKind: 'json' }, scanned: 501 });

    // Looking cost nothing: same depth, same order.
    expect(await queueDepth(`${big}.dead`)).toBe(COUNT);
    expect(ids((await api('dead?limit=50')).body)).toEqual(ids(first.body));
    // A filtered purge looks at the first 10,000 only: those go, the rest stay, in order.
    const html = await (await fetch(`${at}/ui/`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
    const csrf = /name="orbit-csrf" content="([^"]+)"/.exec(html)![1]!;
    const purge = await fetch(`${at}/ui/api/dead/purge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'x-orbit-csrf': csrf },
      body: JSON.stringify({ queue: 'dead', lane: 'billing' }),
    });
    expect(await purge.json()).toMatchObject({ purged: 10_000, left: 2_000, scanned: 10_000, scanLimit: 10_000 });
    expect(await queueDepth(`${big}.dead`)).toBe(2_000);
    expect(ids((await api('dead?limit=3')).body)).toEqual(['m-10000', 'm-10001', 'm-10002']);
    process.stderr.write(`ui-console: a page of 50 took ${took} ms; a search over 10,000 ${searchTook} ms (all reads so far)\n`);
  }, 180_000); // every read is round trips to a broker the other suites load: ten times its ~15 s on an idle 4.0 node

  test('the config page shows the effective config without the token', async () => {
    const page = await signedIn();
    await page.goto(`${base}/ui/config`);
    await page.locator('#config').waitFor();
    const text = (await page.textContent('#config')) ?? '';
    expect(JSON.parse(text)).toMatchObject({ namespace: ns, http: { ui: { enabled: true, readOnly: false } } });
    expect(text).not.toContain(TOKEN);
    const html = await page.content();
    expect(html).not.toContain(TOKEN);
  });

  test('bulk actions state the count and ask first: Replay selected, Replay all matching, Purge matching', async () => {
    const scheduler = await connectTestScheduler(cleanup, config);
    const { id } = await scheduler.publish('billing', { order: 3 });
    const other = (await scheduler.publish('billing', { order: 4 })).id;
    await waitFor(async () => (await queueDepth(`${ns}.dead`)) === 3, 10_000, 'three dead letters');
    const page = await signedIn();
    const dialogs: string[] = [];
    let answer = false;
    page.on('dialog', (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      (answer ? d.accept() : d.dismiss()).catch(() => undefined);
    });
    await page.goto(`${base}/ui/dead-letters`);
    await page.getByLabel(`select ${id}`).check();

    // Dismissed: nothing happens.
    await page.getByRole('button', { name: 'Replay selected' }).click();
    expect(dialogs).toEqual(['confirm: Replay 1 selected message(s)?']);
    expect(await queueDepth(`${ns}.dead`)).toBe(3);

    answer = true;
    await page.getByRole('button', { name: 'Replay selected' }).click();
    await waitFor(() => runs.get(id) === 2, 10_000, 'the selected message to run again');
    await waitFor(async () => (await queueDepth(`${ns}.dead`)) === 2, 5_000, 'two dead letters left');
    // The page reloads itself after an action (its alert accepted): let it, before going elsewhere.
    await page.waitForURL((u) => u.searchParams.get('queue') === 'dead');

    dialogs.length = 0;
    await page.goto(`${base}/ui/dead-letters?id=${other}`);
    await page.locator('tbody tr', { hasText: other }).waitFor();
    await page.getByRole('button', { name: 'Replay all matching' }).click();
    await waitFor(() => runs.get(other) === 2, 10_000, 'the matching message to run again');
    expect(dialogs[0]).toBe(`confirm: Replay 1 message(s) in dead matching id ${other}?`);
    await waitFor(async () => (await queueDepth(`${ns}.dead`)) === 1, 5_000, 'one dead letter left');
    await page.waitForURL((u) => u.searchParams.get('queue') === 'dead' && u.searchParams.get('id') === other);

    dialogs.length = 0;
    await page.goto(`${base}/ui/dead-letters`);
    await page.locator('#summary').waitFor();
    await page.getByRole('button', { name: 'Purge matching' }).click();
    await waitFor(async () => (await queueDepth(`${ns}.dead`)) === 0, 5_000, 'the purge');
    expect(dialogs[0]).toBe(`confirm: Purge (delete for good) 1 message(s) in dead?`);
    // Its alert answered, the page reloads itself: the test ends after that, not during it.
    await page.waitForURL((u) => u.searchParams.get('queue') === 'dead');
  }, 40_000);
});
