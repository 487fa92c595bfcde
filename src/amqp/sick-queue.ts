/**
 * How long the daemon's looks (work-ahead's fetches, the metrics' depth checks) leave a queue
 * that did not answer alone before trying it again. A quorum queue without a leader answers no
 * command, and the channel the call went on waits behind it: each try costs one channel given
 * up, so once a minute at most.
 */
export const SICK_QUEUE_REST_MS = 60_000;
