import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

/** Debian's chromium package; never a browser download. */
export const CHROMIUM_BIN = process.env.ORBIT_CHROMIUM_BIN ?? '/usr/bin/chromium';

const HOW =
  'apt-get install -y --no-install-recommends chromium (`ORBIT_INSTALL_PREREQUISITES=1 npm test` does this first, as CI does: ' +
  'scripts/test-prerequisites.sh), or point ORBIT_CHROMIUM_BIN at a Chromium binary';

/**
 * Whether the browser tests can run. Under CI a missing browser fails them with the fix (a
 * skipped test would hide it there); on a developer's machine they skip with the same words.
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM_BIN)) return true;
  if (process.env.CI) throw new Error(`${CHROMIUM_BIN} not found: ${HOW}`);
  process.stderr.write(`ui-console tests skipped: ${CHROMIUM_BIN} not found; install with: ${HOW}\n`);
  return false;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_BIN, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}
