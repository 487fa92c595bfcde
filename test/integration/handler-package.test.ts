/**
 * A handler kept outside orbit's directory imports the library by its package name
 * (`@orbit-worker/orbit`) and signals with its UnrecoverableError, in the three ways such a
 * handler finds the package:
 *
 * - installed: `node_modules/@orbit-worker/orbit` beside the handler is a symlink to the
 *   repository, which is what `npm link` and `npm install /path/to/orbit` make;
 * - container: the Dockerfile's layout — the package lives at `app/`, linked from
 *   `node_modules/@orbit-worker/orbit` at the root, the handler in `etc/orbit/` below it;
 * - second copy: the handler's own node_modules holds a *copy* of the built package, so
 *   its UnrecoverableError is another class than the daemon's (recognised by brand).
 *
 * Everything lives in a temporary directory outside the repository; the daemon is the
 * built CLI, run with a config that points one lane at each copy of the example handler.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Scheduler } from '../../src';
import { AMQP_URL, deleteNamespace, randomNamespace, testConfig } from '../helpers/broker';
import { CliProcess, ensureBuilt, REPO_ROOT, startCli } from '../helpers/cli';
import { takeDeadLetters } from '../helpers/dead-letters';

jest.setTimeout(90_000);

const EXAMPLE = join(REPO_ROOT, 'examples', 'validate-order.mjs');
const PACKAGE = '@orbit-worker/orbit';
const LANES = ['installed', 'container', 'second-copy'] as const;
type Lane = (typeof LANES)[number];

let root: string;
let ns: string;
const handlerDir = {} as Record<Lane, string>;

/** Copies the example handler into `dir` and returns the copy's path. */
function placeHandler(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'validate-order.mjs');
  cpSync(EXAMPLE, file);
  return file;
}

/** `dir/node_modules/@orbit-worker/orbit` as a symlink to `target`. */
function linkPackage(dir: string, target: string): void {
  const link = join(dir, 'node_modules', ...PACKAGE.split('/'));
  mkdirSync(dirname(link), { recursive: true });
  symlinkSync(target, link, 'dir');
}

/** The real file `import '@orbit-worker/orbit'` loads from `dir`, as Node's ESM resolver finds it. */
function resolvedFrom(dir: string): string {
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', `process.stdout.write(import.meta.resolve(${JSON.stringify(PACKAGE)}))`], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`cannot resolve ${PACKAGE} from ${dir}: ${res.stderr}`);
  return realpathSync(fileURLToPath(res.stdout));
}

beforeAll(async () => {
  await ensureBuilt();
  root = realpathSync(mkdtempSync(join(tmpdir(), 'orbit-handler-package-')));
  // Outside the repository, so nothing resolves through the repository's own node_modules.
  expect(relative(REPO_ROOT, root).startsWith('..')).toBe(true);
  ns = randomNamespace('hpkg');

  const project = join(root, 'project');
  linkPackage(project, REPO_ROOT);
  handlerDir.installed = dirname(placeHandler(project));

  // The Dockerfile: the package at /app (here app/, standing for the image's copy of the
  // repository), linked from /node_modules above every mounted handler directory.
  const image = join(root, 'image');
  mkdirSync(image);
  symlinkSync(REPO_ROOT, join(image, 'app'), 'dir');
  linkPackage(image, join(image, 'app'));
  handlerDir.container = dirname(placeHandler(join(image, 'etc', 'orbit')));

  // A second, separate copy of the built package (its own files, so its own module
  // instances); its dependencies come from the repository's node_modules.
  const pinned = join(root, 'pinned');
  const copy = join(pinned, 'node_modules', ...PACKAGE.split('/'));
  mkdirSync(copy, { recursive: true });
  cpSync(join(REPO_ROOT, 'package.json'), join(copy, 'package.json'));
  cpSync(join(REPO_ROOT, 'dist', 'src'), join(copy, 'dist', 'src'), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  handlerDir['second-copy'] = dirname(placeHandler(pinned));
}, 180_000);

afterAll(async () => {
  await deleteNamespace(ns);
  rmSync(root, { recursive: true, force: true });
});

test('each layout resolves the package where it should', () => {
  const ours = join(REPO_ROOT, 'dist', 'src', 'index.js');
  expect(resolvedFrom(handlerDir.installed)).toBe(ours);
  expect(resolvedFrom(handlerDir.container)).toBe(ours);
  const second = resolvedFrom(handlerDir['second-copy']);
  expect(second).toBe(join(root, 'pinned', 'node_modules', '@orbit-worker', 'orbit', 'dist', 'src', 'index.js'));
  expect(second.startsWith(REPO_ROOT + sep)).toBe(false);
});

describe('orbit start with the example handler outside the repository', () => {
  let daemon: CliProcess | undefined;
  let scheduler: Scheduler | undefined;

  afterAll(async () => {
    await scheduler?.close();
    if (daemon) {
      daemon.kill('SIGTERM');
      await daemon.waitForExit(20_000).catch(() => daemon!.destroy());
    }
  });

  test('accepts good orders and dead-letters bad ones at once with the handler’s code, in every layout', async () => {
    // Five attempts with a short backoff: were UnrecoverableError not recognised, a bad
    // order would be retried and die later with HANDLER_ERROR after 5 attempts.
    const retry = { maxAttempts: 5, backoff: { initial: '100ms', factor: 1, max: '100ms' } };
    const lanes = LANES.map((name) => ({ name, concurrency: 2, maxPriority: 0, workAhead: false, retry, handler: join(handlerDir[name], 'validate-order.mjs') }));
    const configFile = join(root, 'orbit.json');
    writeFileSync(
      configFile,
      JSON.stringify({ namespace: ns, amqp: { url: AMQP_URL, reconnect: '500ms' }, delay: { unit: '1s', levels: 4 }, log: { level: 'info' }, http: { port: 0 }, lanes }),
    );
    daemon = await startCli(['start', '--config', configFile], { cwd: root });
    await daemon.waitForLine((l) => l.msg === 'orbit started', 30_000, '"orbit started"');

    scheduler = new Scheduler({ config: testConfig(ns, { lanes: lanes.map(({ handler: _h, ...rest }) => rest) }) });
    for (const lane of LANES) {
      await scheduler.publish(lane, { id: `${lane}-good`, amount: 12.5 }, { id: `${lane}-good` });
      await scheduler.publish(lane, { amount: 3 }, { id: `${lane}-no-id` });
      await scheduler.publish(lane, 'not json at all', { id: `${lane}-not-json` });
    }

    for (const lane of LANES) {
      const line = await daemon.waitForLine((l) => l.msg === 'order accepted' && l.order === `${lane}-good`, 20_000, `the ${lane} order accepted`);
      expect(line).toMatchObject({ lane, amount: 12.5 });
    }

    const dead = await takeDeadLetters(ns, 2 * LANES.length, 20_000);
    for (const lane of LANES) {
      expect(dead.get(`${lane}-no-id`)?.headers).toMatchObject({
        'x-orbit-error-code': 'ORDER_INVALID',
        'x-orbit-error': 'order has no "id"',
        'x-orbit-dead-lane': lane,
        'x-orbit-dead-attempts': 1,
      });
      expect(dead.get(`${lane}-not-json`)?.headers).toMatchObject({
        'x-orbit-error-code': 'ORDER_NOT_JSON',
        'x-orbit-error': 'body is not JSON',
        'x-orbit-dead-lane': lane,
        'x-orbit-dead-attempts': 1,
      });
    }
    expect(daemon.exitResult).toBeUndefined();
  });
});
