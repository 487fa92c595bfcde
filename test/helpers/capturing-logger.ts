import { Writable } from 'node:stream';
import pino from 'pino';

/** A pino logger at `info` whose JSON lines (level as its label: `warn`, `info`…) the test reads from `lines`. */
export function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info', formatters: { level: (label) => ({ level: label }) } }, stream), lines };
}
