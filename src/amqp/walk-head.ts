import type { Channel, Message } from 'amqplib';

/** The first window a walk fetches; each next one is ten times larger (up to what is left). */
export const FIRST_WINDOW = 100;
/** How long a window waits for its next delivery before asking whether the queue ran dry. */
const IDLE_MS = 50;
/** A window that gets nothing for this long while the queue says it holds more ends short. */
const STALL_MS = 5_000;

export type HeadVisitor = (msg: Message, index: number) => boolean | void | Promise<boolean | void>;

export interface HeadWalk {
  /** Messages handed to the visitor (the one that said stop included). */
  readonly visited: number;
  /** Fetched after the visitor said stop: still unacked, in queue order, for the caller to hand back. */
  readonly unvisited: Message[];
}

/**
 * Fetches messages from the head of `queue` unacked, in queue order, and hands them to
 * `visit` one at a time (awaited) until `max` were visited, the queue ran dry, or `visit`
 * returned false. Everything fetched stays unacked on `ch` unless the visitor acks it: the
 * caller hands the rest back (`hand-back.ts`).
 *
 * Why a consumer and not `basic.get`: a get is one round trip per message, and a search of
 * 10,000 dead letters took 4.5–6.7 s that way on an idle broker (3.10.8, 4.0.5) and over a
 * minute on a loaded one. A consumer whose prefetch is the window's size lets the broker
 * push the whole window at once, and stops it there: nothing beyond the window leaves the
 * queue. Windows grow tenfold from `FIRST_WINDOW`, so a look that stops early (a search
 * that finds its id) fetches at most ten times what it visited, and a long one few windows.
 */
export async function walkHead(ch: Channel, queue: string, max: number, visit: HeadVisitor): Promise<HeadWalk> {
  let visited = 0;
  let window = FIRST_WINDOW;
  while (visited < max) {
    const want = Math.min(window, max - visited);
    const batch = await fetchWindow(ch, queue, want);
    for (let i = 0; i < batch.length; i++) {
      const keepGoing = (await visit(batch[i]!, visited++)) !== false;
      if (!keepGoing) return { visited, unvisited: batch.slice(i + 1) };
    }
    if (batch.length < want) break; // the queue ran dry
    window *= 10;
  }
  return { visited, unvisited: [] };
}

/**
 * Up to `count` messages from the head, unacked, in queue order: a consumer of its own whose
 * prefetch is `count`. Ends when it holds `count`, or when the queue shows no ready message
 * (deliveries precede the reply to a later method on the same channel, so by then every
 * message sent has arrived), or after `STALL_MS` without a delivery.
 */
async function fetchWindow(ch: Channel, queue: string, count: number): Promise<Message[]> {
  const got: Message[] = [];
  let wake: (() => void) | undefined;
  let cancelledByBroker = false;
  // Per consumer, for consumers started after it: this window's own.
  await ch.prefetch(count, false);
  const { consumerTag } = await ch.consume(
    queue,
    (msg) => {
      if (msg) got.push(msg);
      else cancelledByBroker = true; // the queue was deleted
      wake?.();
    },
    { noAck: false },
  );
  try {
    let lastProgress = Date.now();
    while (got.length < count && !cancelledByBroker) {
      const before = got.length;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, IDLE_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
      if (got.length > before) {
        lastProgress = Date.now();
        continue;
      }
      if ((await ch.checkQueue(queue)).messageCount === 0) break;
      if (Date.now() - lastProgress > STALL_MS) break;
    }
  } finally {
    // Deliveries sent before the cancel is confirmed still arrive here: they are in `got`.
    if (!cancelledByBroker) await ch.cancel(consumerTag).catch(() => undefined);
  }
  return got;
}
