import { ConnectionOptions, createIORedisClient, RedisConnection } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { describeRedisEndpoint, type RedisEndpoint, watchForSilence } from './redis-endpoint';

/** Marks BullMQ connection options that name a Cluster; see installClientFactory. */
const CLUSTER_NODES = 'bufferqClusterNodes';
/** Marks BullMQ connection options whose connections are watched for silence, and after how long (ms). */
const SILENT_AFTER_MS = 'bufferqSilentAfterMs';

/**
 * The longest a BullMQ call may wait on Redis with nothing wrong: a worker's blocking connection waits in
 * `BZPOPMIN` for at most 10 s (BullMQ's `maximumBlockTimeout`, or `drainDelay`, 5 s by default, when no job
 * is delayed; our workers keep that default), and a `PING` sent meanwhile waits behind it.
 */
export const BULLMQ_LONGEST_BLOCK_MS = 10_000;

/**
 * BullMQ connection options for a Redis endpoint. BullMQ opens its own connections (workers block on them),
 * and its workers need `maxRetriesPerRequest: null` to wait out a Redis restart instead of crashing.
 *
 * For a Cluster, BullMQ only accepts a ready-made client, which it then never closes (a shared connection
 * whose owner Nest would close in an order we cannot pin against the workers' own shutdown). So the options
 * carry the seed nodes instead, and BullMQ's client factory builds a Cluster client from them: each queue
 * and worker owns its connections and closes them itself, as with a single server.
 *
 * The connections (a Cluster's node by node) are watched for silence as the command clients are (the
 * endpoint's `replyTimeoutMs`), plus BULLMQ_LONGEST_BLOCK_MS: the factory cannot tell a worker's blocking connection
 * from the others, and a silent one would stop a worker for good (it waits for jobs that never arrive) or
 * hold a queue call (a timer's delivery job, a flush schedule) until the OS drops the connection.
 */
export function bullmqConnection(endpoint: RedisEndpoint | string): ConnectionOptions {
  const resolved: RedisEndpoint = typeof endpoint === 'string' ? { url: endpoint } : endpoint;
  installClientFactory();
  const silentAfter = resolved.replyTimeoutMs
    ? { [SILENT_AFTER_MS]: resolved.replyTimeoutMs + BULLMQ_LONGEST_BLOCK_MS }
    : {};
  if ('url' in resolved) return { url: resolved.url, maxRetriesPerRequest: null, ...silentAfter };
  return { [CLUSTER_NODES]: resolved.clusterNodes, maxRetriesPerRequest: null, ...silentAfter };
}

function installClientFactory(): void {
  if (RedisConnection.clientFactory) return;
  RedisConnection.clientFactory = (options) => {
    const {
      [CLUSTER_NODES]: nodes,
      [SILENT_AFTER_MS]: silentAfterMs,
      url,
      ...rest
    } = options as Record<string, unknown>;
    if (Array.isArray(nodes)) {
      // Each node's address comes from the slot map; BullMQ's single-server defaults must not pin one.
      const redisOptions = { ...rest };
      delete redisOptions.host;
      delete redisOptions.port;
      const cluster = new Cluster(nodes, { redisOptions });
      if (typeof silentAfterMs === 'number')
        watchForSilence(cluster, silentAfterMs, `${describeRedisEndpoint({ clusterNodes: nodes })} (BullMQ)`);
      return createIORedisClient(cluster);
    }
    // Anything else is built exactly as BullMQ builds it without a factory.
    const redis = typeof url === 'string' ? new Redis(url, rest) : new Redis(rest);
    if (typeof silentAfterMs === 'number' && typeof url === 'string')
      watchForSilence(redis, silentAfterMs, `${describeRedisEndpoint({ url })} (BullMQ)`);
    return createIORedisClient(redis);
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
