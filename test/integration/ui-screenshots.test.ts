/**
 * Writes the console's screenshots in docs/ (README "Console"): a daemon with three lanes, a
 * few hundred messages ready and waiting, some dead letters. Not part of the suite: it runs
 * only with ORBIT_UI_SCREENSHOTS=1 (`ORBIT_UI_SCREENSHOTS=1 npx jest test/integration/ui-screenshots.test.ts`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UnrecoverableError, type Handler } from '../../src';
import { deleteNamespace, queueDepth, randomNamespace, testConfig } from '../helpers/broker';
import { chromiumAvailable, launchChromium } from '../helpers/chromium';
import { connectTestScheduler, startTestDaemon } from '../helpers/harness';
import { freePort } from '../helpers/private-broker';
import { Cleanup } from '../helpers/recorder';
import { sleep, waitFor } from '../helpers/wait';

const TOKEN = 'screenshot-token-0123456789abcdef';
const DOCS = resolve(__dirname, '../../docs');
const wanted = process.env.ORBIT_UI_SCREENSHOTS === '1';
const run = wanted && chromiumAvailable() ? test : test.skip;

const cleanup = new Cleanup();
afterAll(() => cleanup.run(), 30_000);

run('console screenshots', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orbit-ui-shots-'));
  cleanup.add(async () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'token'), TOKEN);
  const ns = randomNamespace('shop');
  cleanup.add(() => deleteNamespace(ns));
  const port = await freePort();
  const config = testConfig(ns, {
    delay: { unit: '1s' },
    lanes: [
      { name: 'emails', concurrency: 4 },
      { name: 'billing', concurrency: 2 },
      { name: 'reports', concurrency: 1 },
    ],
    http: { host: '127.0.0.1', port, ui: { enabled: true, readOnly: false, tokenFile: join(dir, 'token') } },
  });
  const slow: Handler = () => sleep(40);
  const billing: Handler = (m) => {
    const body = m.json<{ card: string }>();
    if (body.card.endsWith('0002')) throw new UnrecoverableError(`card ending 0002 was declined by the issuer (order ${m.id})`, { code: 'CARD_DECLINED' });
  };
  // reports never finishes quickly: its queue stays full for the picture.
  const reports: Handler = () => sleep(5000);
  await startTestDaemon(cleanup, { config, handlers: { emails: slow, billing, reports } });
  const scheduler = await connectTestScheduler(cleanup, config);
  for (let i = 0; i < 6; i++) await scheduler.publish('billing', { order: 1000 + i, card: '4000000000000002', amount: 19.9 + i }, { id: `order-${1000 + i}` });
  for (let i = 0; i < 40; i++) await scheduler.publish('reports', { report: 'daily', shop: i });
  for (let i = 0; i < 400; i++) await scheduler.publish('emails', { to: `user${i}@example.com`, template: 'welcome' });
  const delays = [30_000, 90_000, 600_000, 3_600_000, 14_400_000, 86_400_000, 259_200_000, 604_800_000];
  for (let i = 0; i < 600; i++) await scheduler.publish('emails', { to: `later${i}@example.com`, template: 'reminder' }, { delay: delays[i % delays.length]! + i * 1000 });
  await waitFor(async () => (await queueDepth(`${ns}.dead`)) === 6, 10_000, 'the dead letters');

  const base = `http://127.0.0.1:${port}`;
  const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
  await fetch(`${base}/ui/api/overview`, auth); // the first reading for the rates
  await sleep(2000);

  const browser = await launchChromium();
  cleanup.add(() => browser.close());
  const page = await (await browser.newContext({ viewport: { width: 1200, height: 760 } })).newPage();
  await page.goto(`${base}/ui/?token=${TOKEN}`);
  await page.locator('table tbody tr').first().waitFor();
  await page.screenshot({ path: join(DOCS, 'ui-overview.png'), fullPage: true });

  await page.goto(`${base}/ui/schedule`);
  await page.locator('svg.chart').waitFor();
  await page.screenshot({ path: join(DOCS, 'ui-schedule.png'), fullPage: true });

  await page.goto(`${base}/ui/dead-letters?open=order-1002`);
  await page.locator('#body').waitFor();
  await page.screenshot({ path: join(DOCS, 'ui-dead-letters.png'), fullPage: true });

  await page.goto(`${base}/ui/config`);
  await page.locator('#config').waitFor();
  await page.screenshot({ path: join(DOCS, 'ui-config.png'), fullPage: false });
}, 120_000);
