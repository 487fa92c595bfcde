import type { ConnectionOptions } from 'bullmq';

/** BullMQ connection options for a `redis://host:port[/db]` URL. */
export function bullConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db === undefined ? {} : { db }),
    // What BullMQ asks of the connections its workers block on.
    maxRetriesPerRequest: null,
  };
}

/** The job body: the same bytes the RabbitMQ contenders carry. */
export interface BenchJobData {
  readonly id: string;
  readonly runs: number;
  readonly body: string;
}
