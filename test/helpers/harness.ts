import { Daemon, Scheduler, type DaemonOptions, type ResolvedConfig } from '../../src';
import { deleteNamespace, randomNamespace, testConfig } from './broker';
import type { Cleanup } from './recorder';

/** A test's own namespace and the config built for it. */
export interface TestNamespace {
  readonly ns: string;
  readonly config: ResolvedConfig;
}

/**
 * A fresh random namespace (named `<prefix>-…`) and its {@link testConfig}; the namespace
 * is deleted when `cleanup` runs.
 */
export function namespaceFor(cleanup: Cleanup, prefix: string, settings: Record<string, unknown>): TestNamespace {
  const ns = randomNamespace(prefix);
  cleanup.add(() => deleteNamespace(ns));
  return { ns, config: testConfig(ns, settings) };
}

/** Starts a daemon with `options`; it is stopped when `cleanup` runs. */
export async function startTestDaemon(cleanup: Cleanup, options: DaemonOptions): Promise<Daemon> {
  const daemon = new Daemon(options);
  cleanup.add(() => daemon.stop());
  await daemon.start();
  return daemon;
}

/**
 * A Scheduler for `config`, closed when `cleanup` runs. It connects (and asserts the
 * topology) up front, so that no publish pays for it in its timing.
 */
export async function connectTestScheduler(cleanup: Cleanup, config: ResolvedConfig): Promise<Scheduler> {
  const scheduler = new Scheduler({ config });
  cleanup.add(() => scheduler.close());
  await scheduler.connect();
  return scheduler;
}
