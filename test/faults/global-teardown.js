/**
 * Merges the scenarios of this run (test/faults/.results/<run>/*.json, one per scenario) into
 * test/faults/results.json and prints the results table, as plain lines and as Markdown
 * for docs/RELIABILITY.md. Scenarios not run this time keep their earlier entry.
 */
const { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const ORDER = ['daemon', 'broker', 'connection', 'shutdown', 'cluster', 'fuzz'];
const rank = (name) => {
  const i = ORDER.findIndex((w) => name.toLowerCase().startsWith(w));
  return i === -1 ? ORDER.length : i;
};

function seconds(ms) {
  return ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(2)} s`;
}

module.exports = async function globalTeardown() {
  const run = process.env.ORBIT_FAULT_RUN;
  if (!run) return;
  const dir = join(__dirname, '.results', run);
  const file = join(__dirname, 'results.json');
  const fresh = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
    : [];
  rmSync(dir, { recursive: true, force: true });
  if (fresh.length === 0) return;
  let previous = [];
  try {
    previous = JSON.parse(readFileSync(file, 'utf8')).scenarios ?? [];
  } catch {
    previous = [];
  }
  const byName = new Map(previous.map((s) => [s.scenario, s]));
  for (const s of fresh) byName.set(s.scenario, s);
  const scenarios = [...byName.values()].sort((a, b) => rank(a.scenario) - rank(b.scenario) || a.scenario.localeCompare(b.scenario));
  const started = Number(process.env.ORBIT_FAULT_RUN_STARTED) || undefined;
  const out = {
    generatedAt: new Date().toISOString(),
    suiteSeconds: started ? Math.round((Date.now() - started) / 1000) : null,
    machine: `${require('node:os').cpus().length} cores, Node ${process.version}`,
    scenarios,
  };
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);

  const lines = [
    '',
    `fault suite results (${file}):`,
    '| scenario | fault | messages | handler runs needed | runs processed | lost | duplicates (ids) | recovery |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...scenarios.map(
      (s) =>
        `| ${s.scenario} | ${s.fault} | ${s.published} | ${s.expectedRuns} | ${s.processed} | ${s.lost} | ${s.duplicates} (${s.duplicatedIds}) | ${seconds(s.recoveryMs)} |`,
    ),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
};
