/**
 * Gives this run of the fault suite its own results dir (jest.faults.config.js `globalSetup`):
 * the test workers inherit ORBIT_FAULT_RUN and write one JSON file per scenario into
 * test/faults/.results/<run>/, which the global teardown merges into results.json. Another
 * run going on at the same time (another engineer, CI) keeps its own dir.
 */
const { mkdirSync, readdirSync, rmSync, statSync } = require('node:fs');
const { join } = require('node:path');

module.exports = async function globalSetup() {
  const root = join(__dirname, '.results');
  mkdirSync(root, { recursive: true });
  // Leftovers of runs that died more than a day ago.
  for (const entry of readdirSync(root)) {
    const path = join(root, entry);
    try {
      if (Date.now() - statSync(path).mtimeMs > 24 * 3600 * 1000) rmSync(path, { recursive: true, force: true });
    } catch {
      // gone already
    }
  }
  const run = `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
  mkdirSync(join(root, run));
  process.env.ORBIT_FAULT_RUN = run;
  process.env.ORBIT_FAULT_RUN_STARTED = String(Date.now());
};
