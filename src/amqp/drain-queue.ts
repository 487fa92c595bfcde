import type { Channel, ConsumeMessage } from 'amqplib';

/** Messages taken from a queue but not yet forwarded at once; bounds memory. */
const WINDOW = 500;

export interface DrainOptions {
  /** Forward at most this many messages (the rest stay in the queue). @defaultValue no limit */
  readonly limit?: number;
}

/**
 * Consumes `queue` until it is empty (or `limit` messages were forwarded), forwarding each
 * message and acking it only once the forward is confirmed: nothing is lost, a crash leaves
 * a duplicate at most. A failed forward leaves the rest unacked (the broker keeps them) and
 * rejects. Resolves with the count forwarded. Deliveries past the limit are left unacked:
 * they go back when the caller closes the channel (in place, on a classic queue).
 *
 * Shared by `orbit migrate` (moving a queue out and back) and `orbit lanes move`.
 */
export function drainQueue(ch: Channel, queue: string, forward: (msg: ConsumeMessage) => Promise<void>, options: DrainOptions = {}): Promise<number> {
  const limit = options.limit ?? Infinity;
  if (limit <= 0) return Promise.resolve(0);
  return new Promise<number>((resolve, reject) => {
    let forwarded = 0;
    let started = 0;
    let inFlight = 0;
    let failed = false;
    let tag: string | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (err?: unknown): void => {
      clearInterval(timer);
      if (err !== undefined) {
        failed = true;
        reject(err);
      }
    };
    const poll = async (): Promise<void> => {
      if (failed || inFlight > 0 || tag === undefined) return;
      if (forwarded < limit) {
        const { messageCount } = await ch.checkQueue(queue);
        if (messageCount > 0 || inFlight > 0) return;
      }
      clearInterval(timer);
      const t = tag;
      tag = undefined;
      await ch.cancel(t);
      // Deliveries already on the wire before the cancel still arrive and are forwarded.
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
      if (!failed) resolve(forwarded);
    };
    ch.prefetch(Math.min(WINDOW, limit))
      .then(() =>
        ch.consume(queue, (msg) => {
          if (!msg || failed || started >= limit) return;
          started++;
          inFlight++;
          forward(msg).then(
            () => {
              ch.ack(msg);
              forwarded++;
              inFlight--;
            },
            (err: unknown) => {
              inFlight--;
              finish(err);
            },
          );
        }),
      )
      .then(({ consumerTag }) => {
        tag = consumerTag;
        timer = setInterval(() => void poll().catch(finish), 50);
      })
      .catch(finish);
  });
}
