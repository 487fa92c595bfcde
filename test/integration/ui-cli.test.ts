/**
 * `orbit ui`: the console without a daemon, as a child process against the real broker. It
 * needs the token, declares nothing, and stops cleanly on SIGTERM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNamespace, rabbitmqctl, randomNamespace, testConfig, writeConfigFile } from '../helpers/broker';
import { runCli, startCli } from '../helpers/cli';
import { connectTestScheduler } from '../helpers/harness';
import { Cleanup } from '../helpers/recorder';
import { waitFor } from '../helpers/wait';

const TOKEN = 'cli-ui-token-0123456789abcdef';
const cleanup = new Cleanup();
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'orbit-ui-cli-'));
});
afterEach(async () => {
  await cleanup.run();
  rmSync(dir, { recursive: true, force: true });
});

test('without a token it exits 2 naming http.ui.tokenFile', async () => {
  const file = writeConfigFile(dir, randomNamespace('ui-cli'), { lanes: [{ name: 'a' }] });
  const r = await runCli(['ui', '-c', file]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('http.ui.tokenFile');
}, 120_000);

test('on a namespace that does not exist it exits 2 and declares nothing', async () => {
  const ns = randomNamespace('ui-cli');
  cleanup.add(() => deleteNamespace(ns));
  const file = writeConfigFile(dir, ns, { lanes: [{ name: 'a' }] });
  const r = await runCli(['ui', '-c', file, '--host', '127.0.0.1', '--port', '0'], { env: { ORBIT_UI_TOKEN: TOKEN } });
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('NAMESPACE_NOT_FOUND');
  expect(await rabbitmqctl('-q', 'list_queues', 'name', '--no-table-headers')).not.toContain(ns);
  expect(await rabbitmqctl('-q', 'list_exchanges', 'name', '--no-table-headers')).not.toContain(ns);
}, 120_000);

test('serves the console (http.ui.enabled not needed), never prints the token, stops on SIGTERM', async () => {
  const ns = randomNamespace('ui-cli');
  cleanup.add(() => deleteNamespace(ns));
  await connectTestScheduler(cleanup, testConfig(ns, { lanes: [{ name: 'a' }, { name: 'b' }] })); // declares the namespace
  const file = writeConfigFile(dir, ns, { lanes: [{ name: 'a' }, { name: 'b' }] });
  const proc = await startCli(['ui', '-c', file, '--host', '127.0.0.1', '--port', '0'], { env: { ORBIT_UI_TOKEN: TOKEN } });
  cleanup.add(() => proc.destroy());
  await waitFor(() => /console at http:\/\/127\.0\.0\.1:\d+\/ui\//.test(proc.stderr), 30_000, 'the console line');
  const port = /127\.0\.0\.1:(\d+)\/ui\//.exec(proc.stderr)![1];
  expect(proc.stderr).toContain('read-only');
  const res = await fetch(`http://127.0.0.1:${port}/ui/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { lanes: { lane: string; consumers: number }[]; rates: string };
  expect(body.lanes.map((l) => l.lane)).toEqual(['a', 'b']);
  expect(body.lanes.every((l) => l.consumers === 0)).toBe(true); // it consumes nothing
  expect(body.rates).toBe('n/a');
  expect((await fetch(`http://127.0.0.1:${port}/ui/api/overview`)).status).toBe(401);
  proc.kill('SIGTERM');
  const exit = await proc.waitForExit(15_000);
  expect(exit.code).toBe(0);
  expect(exit.stdout + exit.stderr).not.toContain(TOKEN);
}, 120_000);
