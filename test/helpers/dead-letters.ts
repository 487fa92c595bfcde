import { queueDepth, withChannel } from './broker';
import { sleep, waitFor } from './wait';
import { headersOf } from '../../src/message/headers';

/** A message as it lies in a namespace's dead-letter queue. */
export interface DeadLetter {
  readonly id: string | undefined;
  readonly body: Buffer;
  readonly headers: Record<string, unknown>;
}

/**
 * The dead letters of a namespace, in queue order. `take` acks them (the queue is
 * emptied); otherwise they are handed back, in place, when the channel closes.
 */
export function readDeadLetters(ns: string, take: boolean): Promise<DeadLetter[]> {
  return withChannel(async (ch) => {
    const out: DeadLetter[] = [];
    for (;;) {
      const msg = await ch.get(`${ns}.dead`, { noAck: take });
      if (!msg) return out;
      out.push({
        id: msg.properties.messageId as string | undefined,
        body: msg.content,
        headers: headersOf(msg),
      });
    }
  });
}

/**
 * Waits for `count` dead letters (and a moment for strays), then takes them all and
 * expects exactly `count`. Keyed by message id (`(none)` for a message without one).
 */
export async function takeDeadLetters(ns: string, count: number, timeoutMs = 10_000): Promise<Map<string, DeadLetter>> {
  await waitFor(async () => (await queueDepth(`${ns}.dead`)) >= count, timeoutMs, `${count} dead letter(s)`);
  await sleep(200);
  const dead = await readDeadLetters(ns, true);
  expect(dead).toHaveLength(count);
  return new Map(dead.map((d) => [d.id ?? '(none)', d]));
}
