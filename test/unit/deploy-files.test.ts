/**
 * The systemd unit and the install steps in docs/DEPLOY.md agree: every file under
 * /opt/orbit that the unit names (ExecStart, ORBIT_CONFIG, Documentation=) is put there by
 * the `cp` of the install steps. A unit pointing at a path the steps never create is what a
 * new user found.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

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
