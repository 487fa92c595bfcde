/**
 * The systemd unit and the install steps in docs/DEPLOY.md agree: every file under
 * /opt/orbit that the unit names (ExecStart, ORBIT_CONFIG, Documentation=) is put there by
 * the `cp` of the install steps. A unit pointing at a path the steps never create is what a
 * new user found.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseDotenv } from 'dotenv';

const ROOT = join(__dirname, '..', '..');
const unit = readFileSync(join(ROOT, 'config', 'orbit.service'), 'utf8');
const deploy = readFileSync(join(ROOT, 'docs', 'DEPLOY.md'), 'utf8');

/** What the install steps copy into /opt/orbit: the arguments of `cp -r … /opt/orbit/`. */
function copiedToOpt(): string[] {
  const line = deploy.split('\n').find((l) => /^cp -r .* \/opt\/orbit\/?$/.test(l));
  if (!line) throw new Error('docs/DEPLOY.md has no `cp -r … /opt/orbit/` step');
  return line.split(/\s+/).slice(2, -1);
}

/** Every /opt/orbit/… path the unit's directives (not its comments) name. */
function optPathsOfUnit(): string[] {
  const directives = unit.split('\n').filter((l) => !l.startsWith('#'));
  return [...directives.join('\n').matchAll(/\/opt\/orbit\/([\w./-]+)/g)].map((m) => m[1]!);
}

describe('config/orbit.service and the install steps', () => {
  test('the unit names /opt/orbit paths, among them its Documentation=', () => {
    expect(unit).toMatch(/^Documentation=file:\/\/\/opt\/orbit\//m);
    expect(optPathsOfUnit().length).toBeGreaterThanOrEqual(3);
  });

  test.each(optPathsOfUnit())('/opt/orbit/%s is copied by the install steps and exists in the repo', (path) => {
    expect(copiedToOpt()).toContain(path.split('/')[0]);
    // dist/ is built; everything else must be in the repo as the steps copy it.
    if (!path.startsWith('dist/')) expect(existsSync(join(ROOT, path))).toBe(true);
  });
});

/**
 * `docker run --env-file` takes everything after the first `=` as the value, quotes included,
 * where systemd, compose and dotenv strip them: a quoted example would reach orbit with its
 * quotes. Every example line, uncommented, must read the same both ways.
 */
describe('config/orbit.env.example', () => {
  const example = readFileSync(join(ROOT, 'config', 'orbit.env.example'), 'utf8');
  const lines = example
    .split('\n')
    .map((l) => l.replace(/^#(?=ORBIT_[A-Z0-9_]*=)/, ''))
    .filter((l) => /^ORBIT_[A-Z0-9_]*=/.test(l));

  test('names every variable it documents as a settable line', () => {
    expect(lines.length).toBeGreaterThanOrEqual(15);
    expect(lines.some((l) => l.startsWith('ORBIT_LANES=['))).toBe(true);
  });

  test.each(lines.map((l) => [l.slice(0, l.indexOf('=')), l]))('%s reads the same under docker --env-file and dotenv', (key, line) => {
    const dockerValue = line.slice(line.indexOf('=') + 1);
    expect(dockerValue).not.toMatch(/^['"]|['"]$/);
    expect(parseDotenv(line)[key]).toBe(dockerValue);
  });
});
