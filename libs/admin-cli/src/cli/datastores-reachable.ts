import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { describeRedisEndpoint, RedisEndpoint } from '@bufferq/datastores';
import { messageOf } from './error-message';

/** Redis or MongoDB did not answer: the message names which, where (without credentials) and why. */
export class DatastoreUnreachableError extends Error {
  override readonly name = 'DatastoreUnreachableError';
}

/**
 * Asks Redis and MongoDB for a ping before the CLI builds its application, so an unreachable server is
 * reported by name within seconds, and no client is left retrying in the background (a Nest application
 * that fails to boot does not close the BullMQ connections it already opened).
 */
export async function assertDatastoresReachable(datastores: { redis: RedisEndpoint; mongoUrl: string }): Promise<void> {
  // A Cluster is reachable when one of its seed nodes answers (the client learns the others from it).
  const servers = 'url' in datastores.redis ? [datastores.redis.url] : datastores.redis.clusterNodes;
  let unreachable: unknown;
  for (const server of servers) {
    unreachable = await pingRedis(server);
    if (unreachable === undefined) break;
  }
  if (unreachable !== undefined) {
    const variable = 'url' in datastores.redis ? 'REDIS_URL' : 'REDIS_CLUSTER_NODES';
    throw new DatastoreUnreachableError(
      `cannot reach ${describeRedisEndpoint(datastores.redis)} (${variable}): ${messageOf(unreachable)}`,
    );
  }
  const mongo = new MongoClient(datastores.mongoUrl, { serverSelectionTimeoutMS: 5_000 });
  try {
    await mongo.connect();
    await mongo.db('admin').command({ ping: 1 });
  } catch (error) {
    throw new DatastoreUnreachableError(
      `cannot reach MongoDB at ${withoutCredentials(datastores.mongoUrl)} (MONGO_URL): ${messageOf(error)}`,
    );
  } finally {
    await mongo.close();
  }
}

/** Why one Redis server did not answer a PING, or `undefined` when it did. */
async function pingRedis(server: string | { host: string; port: number }): Promise<unknown> {
  const options = { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 };
  const redis = typeof server === 'string' ? new Redis(server, options) : new Redis({ ...server, ...options });
  // Without retries ioredis rejects with "Connection is closed."; the socket's error says why.
  let socketError: unknown;
  redis.on('error', (error) => (socketError ??= error));
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (error) {
    return socketError ?? error;
  } finally {
    redis.disconnect();
  }
}

function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}
