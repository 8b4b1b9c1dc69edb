import { RedisOptions } from 'ioredis';

/**
 * BullMQ connection options for a Redis URL. BullMQ opens its own connections (workers block on them),
 * and its workers need `maxRetriesPerRequest: null` to wait out a Redis restart instead of crashing.
 */
export function bullmqConnection(redisUrl: string): RedisOptions {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: url.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}
