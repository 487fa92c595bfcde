/**
 * How long the daemon leaves a queue that did not answer alone before trying it again. A
 * quorum queue without a leader answers no command, and the channel the call went on waits
 * behind it. Work-ahead's fetches and the metrics' depth checks skip such a queue (each try
 * costs one channel given up, so once a minute at most). Publishes skip a rung that left one
 * unconfirmed (`RungDeclarer.sick`) and take the next rung up.
 */
export const SICK_QUEUE_REST_MS = 60_000;
