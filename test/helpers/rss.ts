/**
 * Resident memory of another process, read from Linux's /proc (the kernel's own figure,
 * the one `ps` and the OOM killer use). For a child that is not this test's process, such as
 * an `orbit start` spawned with `startCli`.
 */
import { readFileSync } from 'node:fs';

/**
 * `VmRSS` of process `pid` in bytes (the file gives kB), or undefined when the process is gone
 * (or the line is missing, e.g. for a zombie).
 */
export function rssOf(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  return kb === undefined ? undefined : Number(kb) * 1024;
}
