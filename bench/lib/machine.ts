import { readFileSync } from 'node:fs';
import os from 'node:os';
import amqplib from 'amqplib';

/** What a reader needs to judge a figure: where it was measured. */
export interface MachineFacts {
  readonly date: string;
  readonly cpu: string;
  readonly cores: number;
  readonly ramGiB: number;
  readonly os: string;
  readonly node: string;
  readonly rabbitmq: string;
  /** 1, 5 and 15 minute load averages when the run started: a busy machine shows here. */
  readonly loadAverage: readonly number[];
}

export async function machineFacts(amqpUrl: string): Promise<MachineFacts> {
  return {
    date: new Date().toISOString(),
    cpu: cpuModel(),
    cores: os.cpus().length,
    ramGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    rabbitmq: await rabbitmqVersion(amqpUrl),
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^model name\s*:/.test(l));
    if (line) return line.replace(/^model name\s*:\s*/, '').trim();
  } catch {
    // Not Linux: fall back to what Node reports.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/**
 * The version the broker under test announces on connect (`rabbitmqctl version` would name
 * the machine's default node, which need not be the broker the bench talks to).
 */
async function rabbitmqVersion(amqpUrl: string): Promise<string> {
  try {
    const conn = await amqplib.connect(amqpUrl);
    const version = conn.connection.serverProperties.version;
    await conn.close();
    return String(version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/** Machine facts as `key: value` lines for the text report. */
export function describeMachine(m: MachineFacts): string[] {
  return [
    `date:     ${m.date}`,
    `cpu:      ${m.cpu} × ${m.cores} cores`,
    `ram:      ${m.ramGiB} GiB`,
    `os:       ${m.os}`,
    `node:     ${m.node}`,
    `rabbitmq: ${m.rabbitmq}`,
    `load:     ${m.loadAverage.join(' / ')} (1/5/15 min at start)`,
  ];
}
