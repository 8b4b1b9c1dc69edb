import type { ConnectionOptions } from 'bullmq';

/**
 * BullMQ connection options for a Redis URL. BullMQ opens its own connections (workers block on them),
 * and its workers need `maxRetriesPerRequest: null` to wait out a Redis restart instead of crashing.
 */
export function bullmqConnection(redisUrl: string): ConnectionOptions {
  return { url: redisUrl, maxRetriesPerRequest: null };
}
