import { ConnectionOptions, createIORedisClient, RedisConnection } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import type { RedisEndpoint } from './redis-endpoint';

/** Marks BullMQ connection options that name a Cluster; see installClusterClientFactory. */
const CLUSTER_NODES = 'bufferqClusterNodes';

/**
 * BullMQ connection options for a Redis endpoint. BullMQ opens its own connections (workers block on them),
 * and its workers need `maxRetriesPerRequest: null` to wait out a Redis restart instead of crashing.
 *
 * For a Cluster, BullMQ only accepts a ready-made client, which it then never closes (a shared connection
 * whose owner Nest would close in an order we cannot pin against the workers' own shutdown). So the options
 * carry the seed nodes instead, and BullMQ's client factory builds a Cluster client from them: each queue
 * and worker owns its connections and closes them itself, as with a single server.
 */
export function bullmqConnection(endpoint: RedisEndpoint | string): ConnectionOptions {
  const resolved = typeof endpoint === 'string' ? { url: endpoint } : endpoint;
  if ('url' in resolved) return { url: resolved.url, maxRetriesPerRequest: null };
  installClusterClientFactory();
  return { [CLUSTER_NODES]: resolved.clusterNodes, maxRetriesPerRequest: null };
}

function installClusterClientFactory(): void {
  if (RedisConnection.clientFactory) return;
  RedisConnection.clientFactory = (options) => {
    const { [CLUSTER_NODES]: nodes, url, ...rest } = options as Record<string, unknown>;
    if (Array.isArray(nodes)) {
      // Each node's address comes from the slot map; BullMQ's single-server defaults must not pin one.
      const redisOptions = { ...rest };
      delete redisOptions.host;
      delete redisOptions.port;
      return createIORedisClient(new Cluster(nodes, { redisOptions }));
    }
    // Anything else is built exactly as BullMQ builds it without a factory.
    return createIORedisClient(typeof url === 'string' ? new Redis(url, rest) : new Redis(rest));
  };
}

/**
 * The name every queue is created under: its name in braces. On a Redis Cluster the braces are a hash tag,
 * so all of one queue's keys share a slot (BullMQ's scripts touch several at once) and each queue gets a
 * slot of its own; on one server they change nothing. Queues keep the app-wide BullMQ prefix.
 */
export function hashTaggedQueueName(name: string): string {
  return /^\{[^{}]+\}$/.test(name) ? name : `{${name}}`;
}
