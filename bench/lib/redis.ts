import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';

/**
 * The Redis BullMQ contenders run on: `--redis-url`, else ORBIT_BENCH_REDIS_URL, else the
 * local one. It is shared: every run uses a key prefix of its own and deletes its keys after
 * (never FLUSHALL).
 */
export function defaultRedisUrl(): string {
  return process.env.ORBIT_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
}

/** A BullMQ key prefix nobody else uses. */
export function randomPrefix(contender = 'bullmq'): string {
  return `orbit-bench-${contender}-${randomBytes(5).toString('hex')}`;
}

/** BullMQ wants `maxRetriesPerRequest: null` on the connections its workers block on. */
export function redisConnection(url: string): IORedis {
  return new IORedis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

/** `used_memory` from INFO memory. */
export async function usedMemory(redis: IORedis): Promise<number> {
  const info = await redis.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  if (!m) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

/** Deletes every key under `prefix:` (SCAN + UNLINK in batches). Returns how many. */
export async function deleteKeys(redis: IORedis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Is Redis there? (BullMQ contenders are skipped, with a note, when not.) */
export async function redisAvailable(url: string): Promise<boolean> {
  const redis = new IORedis(url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null, connectTimeout: 2000 });
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}
