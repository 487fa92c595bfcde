/**
 * How long a publisher waits after declaring a quorum queue that did not exist before, before
 * the first publish to it. RabbitMQ (Ra 2.2 in 3.10, 2.14 in 4.0) records a new quorum queue's
 * member in a DETS table (`names.dets`). DETS keeps writes in a cache of its own, in the
 * broker's memory, written out 3 s after the last write (`delayed_write` {3000, 14000}: sooner
 * once 14 KB pile up) or when the table has gone 500 ms untouched (Ra's `auto_save`). If the
 * node is killed first, the queue comes back as a new, empty member ("Quorum queue recovery:
 * ... Starting member as a new one. Context: name_not_registered"), and the messages confirmed
 * into it are gone. Measured: queues 11–46 ms old lost them in 6 of 7 kills (3.10 and 4.0);
 * with a 1 s wait, a rung 3 s old still lost its registration once on 4.0. So 5 s: the 3 s
 * cache delay with a margin. This narrows the window but cannot close it: a node whose table
 * stays busy may hold the write longer, and no client can see or force that flush.
 */
export const NEW_QUORUM_QUEUE_SETTLE_MS = 5_000;

/**
 * Whether a new queue declared with `args` needs that wait: a quorum queue, or a stream (a
 * node's first stream creates RabbitMQ's stream coordinator, a Raft member like a quorum
 * queue's: measured on 3.10, a stream declared just before a kill -9 came back "down or
 * inaccessible" for good, and one declared 6 s after the node's first did not).
 */
export function needsSettle(args: Readonly<Record<string, unknown>>): boolean {
  return isQuorumQueue(args) || args['x-queue-type'] === 'stream';
}

/** Whether a queue declared with `args` is a quorum queue. */
export function isQuorumQueue(args: Readonly<Record<string, unknown>>): boolean {
  return args['x-queue-type'] === 'quorum';
}

/** Resolves after `ms` (the settle of new quorum queues). */
export function settleNewQuorumQueues(ms: number = NEW_QUORUM_QUEUE_SETTLE_MS): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
