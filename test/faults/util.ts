/** Small helpers shared by the fault scenarios. */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import pino from 'pino';
import { Scheduler } from '../../src';
import type { ResolvedConfig } from '../../src/config/types';
import { silentLogger } from '../../src/logging/logger';
import { REPO_ROOT } from '../helpers/cli';
import { within } from '../../src/amqp/within';
import { errnoCode } from '../../src/errors';
import { names } from '../../src/naming/names';
import { ladderQueues } from '../../src/topology/build';

export const AUDIT_HANDLER = join(REPO_ROOT, 'test', 'faults', 'fixtures', 'audit-handler.js');


/**
 * A daemon's log, written to a file as it goes (debug level): a scenario that fails attaches
 * its last lines to the error (`withLogTail`), so a failure on CI says what the daemon saw.
 */
export class DaemonLog {
  readonly file: string;
  readonly logger: pino.Logger;
  private readonly began = Date.now();

  constructor(name: string) {
    this.file = join(tmpdir(), `orbit-fault-${name}-${process.pid}.log`);
    this.logger = pino({ level: 'debug' }, pino.destination({ dest: this.file, sync: true }));
  }

  /** The last `lines` lines, each as seconds since the log began, message and fields. */
  tail(lines = 60): string {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return '(no daemon log)';
    }
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-lines)
      .map((l) => {
        try {
          const { time, msg, level: _level, pid: _pid, hostname: _host, ...rest } = JSON.parse(l) as Record<string, unknown>;
          return `  +${((Number(time) - this.began) / 1000).toFixed(2)} s ${String(msg)} ${JSON.stringify(rest)}`;
        } catch {
          return `  ${l}`;
        }
      })
      .join('\n');
  }

  /** `err` with the log's tail appended to its message. */
  withLogTail(err: unknown, lines = 60): Error {
    const e = err instanceof Error ? err : new Error(String(err));
    e.message += `\n\nthe daemon's log, last ${lines} lines (${this.file}):\n${this.tail(lines)}`;
    return e;
  }

  remove(): void {
    rmSync(this.file, { force: true });
  }
}

/** Writes `orbit.json` into `dir` and returns its path. */
export function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = join(dir, 'orbit.json');
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/**
 * Depth of each queue on the broker at `url`; one connection. A missing queue counts 0; a queue
 * the broker cannot answer for counts Infinity, never 0, so a "drained" check cannot pass on a
 * queue that was not looked at: an error (a quorum queue still recovering after a restart), or
 * no answer within `perQueueMs` (a quorum queue without a leader never answers a declare, and
 * the look must name it, not hang its caller). Connecting is bounded the same way.
 */
export async function depthsAt(url: string, queues: readonly string[], perQueueMs = 5000): Promise<Record<string, number>> {
  const connecting = amqplib.connect(url, { timeout: perQueueMs });
  connecting.then((c) => c.on('error', () => undefined), () => undefined);
  const conn = await within(connecting, perQueueMs, () => new Error(`no AMQP connection to ${url} within ${perQueueMs} ms`));
  try {
    const out: Record<string, number> = {};
    for (const q of queues) {
      const ch = await within(conn.createChannel(), perQueueMs, () => new Error(`no channel within ${perQueueMs} ms`));
      // A missing queue (a rung never used) closes the channel with 404: caught below, not a crash.
      ch.on('error', () => undefined);
      const look = ch.checkQueue(q);
      look.catch(() => undefined);
      try {
        out[q] = (await within(look, perQueueMs, () => new Error('no answer'))).messageCount;
      } catch (err) {
        out[q] = errnoCode(err) === 404 ? 0 : Number.POSITIVE_INFINITY;
      } finally {
        // An unanswered look's channel would wait for the broker too: not awaited.
        void ch.close().catch(() => undefined);
      }
    }
    return out;
  } finally {
    // A connection with an unanswered look may never close cleanly: bounded, then left.
    await within(conn.close(), perQueueMs, () => new Error('close')).catch(() => undefined);
  }
}

/**
 * Every queue a config's messages can rest in: the lanes', the binary delay levels (tolerance
 * 0) or every rung the ladder can have (declared on first use: one never used counts 0), the
 * dead letters and the unroutables.
 */
export function topologyQueues(config: ResolvedConfig, lanes: readonly string[]): string[] {
  const n = names(config.namespace);
  const delay =
    config.delay.tolerance > 0 ? ladderQueues(config).map((r) => r.queue) : Array.from({ length: config.delay.levels }, (_, l) => n.delayLevel(l));
  return [...lanes.map((l) => n.lane(l)), ...delay, n.dead, n.unroutable];
}

/**
 * Publishes `ids` to `lane` (body `{}` unless `body` says otherwise), `window` at a time,
 * each confirmed by the broker. Returns the ids confirmed.
 */
export async function publishAll(
  config: ResolvedConfig,
  lane: string,
  ids: Iterable<string>,
  options: { window?: number; body?: (id: string) => unknown } = {},
): Promise<string[]> {
  const scheduler = new Scheduler({ config, role: 'cli', logger: silentLogger() });
  const confirmed: string[] = [];
  try {
    const window = options.window ?? 500;
    let batch: Promise<unknown>[] = [];
    for (const id of ids) {
      batch.push(scheduler.publish(lane, options.body?.(id) ?? {}, { id }).then(() => confirmed.push(id)));
      if (batch.length >= window) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
  } finally {
    await scheduler.close();
  }
  return confirmed;
}


/** Connection names (`orbit:<ns>:<role>`) and channel counts, from `rabbitmqctl list_connections name client_properties channels` output. */
export function parseConnections(stdout: string): Array<{ name: string | undefined; channels: number; pid: string }> {
  const out: Array<{ name: string | undefined; channels: number; pid: string }> = [];
  for (const line of stdout.split('\n')) {
    const pid = line.match(/^(<[^>]+>)/)?.[1];
    if (!pid) continue;
    const name = line.match(/\{"connection_name","([^"]+)"\}|\{<<"connection_name">>,longstr,<<"([^"]+)">>\}/)?.slice(1).find(Boolean);
    const channels = Number(line.trim().split(/\s+/).pop());
    out.push({ name, channels, pid });
  }
  return out;
}
