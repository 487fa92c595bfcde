/**
 * How long a queue that did not answer a call (a quorum queue without a leader answers no
 * command, and the channel the call went on waits behind it) is left alone by the daemon's
 * looks (work-ahead's fetches, the metrics' depth checks) before they try it again. Each try
 * costs one channel given up, so once a minute at most.
 */
export const SICK_QUEUE_REST_MS = 60_000;
