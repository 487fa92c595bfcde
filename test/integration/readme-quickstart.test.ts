/**
 * The README's quickstart, run as written: the commands are read out of README.md (not
 * copied here), so editing the README changes what this test runs.
 *
 * `npm start` builds and writes dist/, which other test files run from at the same time; so
 * it runs in a copy of the repo (sources, config, examples; node_modules linked), the way a
 * fresh clone would. `npm ci` is the one part not run again: the test run itself needed it.
 * The broker and namespace come from the environment (ORBIT_AMQP_URL, ORBIT_NAMESPACE beat
 * the config file), so the test uses the broker under test and a namespace of its own.
 */
import { spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AMQP_URL, deleteNamespace, queueDepth, randomNamespace } from '../helpers/broker';
import { CliProcess, cliEnv, ensureBuilt, REPO_ROOT } from '../helpers/cli';

jest.setTimeout(240_000);

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

/** The ```sh blocks of one `## ` section, each as its command lines (comments and blanks dropped). */
function shellBlocks(section: string): string[][] {
  const start = readme.indexOf(`\n## ${section}\n`);
  if (start === -1) throw new Error(`README.md has no "## ${section}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  const text = readme.slice(start, end === -1 ? undefined : end);
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    m[1]!
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter((l) => l !== '' && !l.startsWith('#')),
  );
}

describe('README quickstart', () => {
  const [setup, publish] = shellBlocks('Quickstart');
  const ns = randomNamespace('readme');
  let dir: string;
  let daemon: CliProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'orbit-readme-'));
    for (const entry of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'bench', 'config', 'examples']) {
      cpSync(join(REPO_ROOT, entry), join(dir, entry), { recursive: true });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  });

  afterAll(async () => {
    if (daemon?.pid !== undefined && daemon.exitResult === undefined) {
      try {
        process.kill(-daemon.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await deleteNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A command line as the README gives it, in the copy, as a process group (Ctrl-C reaches all). */
  function shell(line: string): CliProcess {
    const child = spawn('bash', ['-c', line], {
      cwd: dir,
      env: cliEnv({ ORBIT_AMQP_URL: AMQP_URL, ORBIT_NAMESPACE: ns, ORBIT_HTTP_PORT: '0' }),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdin.end();
    return new CliProcess(child);
  }

  test('npm start runs the daemon; the publish line gives it work; the example handler runs 3 times, then stops; Ctrl-C stops the daemon cleanly', async () => {
    expect(setup?.[0]).toMatch(/^npm ci && /);
    const start = setup![0]!.replace(/^npm ci && /, '');
    expect(start).toBe('npm start');
    daemon = shell(start);
    await daemon.waitForLine((l) => l.msg === 'orbit started', 180_000, 'the daemon to start (after the build)');

    expect(publish).toHaveLength(1);
    const sent = shell(publish![0]!);
    const result = await sent.waitForExit(30_000);
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.stdout.trim()) as { id: string; lane: string };
    expect(printed.lane).toBe('fast');

    // "reschedules the message every 5 s until it has run 3 times"
    const ran = () => daemon!.lines.filter((l) => l.msg === 'example handler ran' && l.id === printed.id);
    await daemon.waitForLine(() => ran().length >= 3, 60_000, 'three runs of the example handler');
    expect(ran().map((l) => l.runs)).toEqual([0, 1, 2]);
    // Done after the third: nothing more comes (a fourth would come 5 s later at the latest).
    await new Promise((r) => setTimeout(r, 6000));
    expect(ran()).toHaveLength(3);

    // Ctrl-C in the terminal: SIGINT to the whole foreground group. npm itself dies of the
    // signal (as it does in a terminal); what matters is that the daemon under it stopped
    // cleanly, having let in-flight handlers finish.
    process.kill(-daemon.pid!, 'SIGINT');
    await daemon.waitForExit(45_000);
    expect(daemon.lines.filter((l) => l.msg === 'orbit stopped')).toHaveLength(1);
  });
});

describe('README publishing examples', () => {
  const [cli] = shellBlocks('Publishing');
  const ns = randomNamespace('readmepub');
  let dir: string;

  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'orbit-readme-pub-'));
    // What the README assumes: `orbit` on the PATH (npm link) and an orbit.json with lane "fast".
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'orbit'), `#!/bin/sh\nexec node ${JSON.stringify(join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js'))} "$@"\n`);
    chmodSync(join(bin, 'orbit'), 0o755);
    const config = JSON.parse(readFileSync(join(REPO_ROOT, 'config', 'default.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'orbit.json'), JSON.stringify({ ...config, namespace: ns, amqp: { url: AMQP_URL } }));
    writeFileSync(join(dir, 'jobs.jsonl'), ['{"id":"a","body":{"n":1}}', '{"id":"b","body":"x","delay":"1h"}', '{"body":{},"priority":9}', ''].join('\n'));
  });

  afterAll(async () => {
    await deleteNamespace(ns);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the CLI lines run as written: one message with delay, priority and id; a JSON-lines file', async () => {
    expect(cli).toEqual([expect.stringMatching(/^orbit publish -c orbit\.json .*--id job-1/), expect.stringMatching(/^orbit publish -c orbit\.json .*--file jobs\.jsonl$/)]);
    const results: Array<{ code: number | null; stdout: string; stderr: string }> = [];
    for (const line of cli!) {
      const child = spawn('bash', ['-c', line], { cwd: dir, env: cliEnv({ PATH: `${join(dir, 'bin')}:${process.env.PATH ?? ''}` }) });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      results.push({ code, stdout, stderr });
    }
    expect(results.map((r) => r.code)).toEqual([0, 0]);
    expect(JSON.parse(results[0]!.stdout.trim())).toMatchObject({ id: 'job-1', lane: 'fast' });
    expect(results[1]!.stderr).toContain('published 3 message(s)');
    // The two due now wait in the lane (no daemon runs here); the 90 s and 1 h ones in the delay path.
    expect(await queueDepth(`${ns}.lane.fast`)).toBe(2);
  });
});
