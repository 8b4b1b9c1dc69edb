import { ConfigService } from '@nestjs/config';
import { Logger } from '@nestjs/common';
import { Cluster, Redis, RedisOptions } from 'ioredis';
import { readCapabilityConfig } from '@bufferq/config';
import { datastoresEnv } from './datastores.env';
import { type RedisLike, SilentConnectionWatchdog } from '@bufferq/redis-scripts';

/**
 * Where Redis is: one server (a URL) or a Redis Cluster (seed nodes; the client discovers the rest), and how
 * long its clients wait on a connection gone silent before they reconnect (`SilentConnectionWatchdog`, 0 or
 * absent for never).
 */
export type RedisEndpoint = ({ url: string } | { clusterNodes: Array<{ host: string; port: number }> }) & {
  replyTimeoutMs?: number;
};

/** The endpoint the settings name: the Cluster when REDIS_CLUSTER_NODES is set, else REDIS_URL. */
export function redisEndpointOf(settings: {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: Array<{ host: string; port: number }>;
  REDIS_REPLY_TIMEOUT_MS?: number;
}): RedisEndpoint {
  const replyTimeoutMs = settings.REDIS_REPLY_TIMEOUT_MS;
  return settings.REDIS_CLUSTER_NODES?.length
    ? { clusterNodes: settings.REDIS_CLUSTER_NODES, replyTimeoutMs }
    : { url: settings.REDIS_URL, replyTimeoutMs };
}

/** The endpoint the app's validated config names, for modules built from ConfigService (BullMQ's root). */
export function redisEndpointFromConfig(config: ConfigService): RedisEndpoint {
  return redisEndpointOf(readCapabilityConfig(datastoresEnv, (key) => config.get(key)));
}

/** How the endpoint is named in logs and errors, without credentials. */
export function describeRedisEndpoint(endpoint: RedisEndpoint): string {
  if ('clusterNodes' in endpoint)
    return `Redis Cluster ${endpoint.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const url = new URL(endpoint.url);
  return `Redis ${url.host}`;
}

const logger = new Logger('Redis');

/**
 * A Redis client for commands (not for BullMQ, which wants its own blocking connections): a Cluster client
 * for a Cluster endpoint. Commands fail fast while Redis is unreachable (no offline queue), so callers get a
 * clear error instead of a request that hangs until reconnect; a connection (a Cluster node's) that goes
 * silent is reconnected after the endpoint's `replyTimeoutMs`, and what it had not heard back on is re-sent.
 */
export function createRedisClient(endpoint: RedisEndpoint | string, options: RedisOptions = {}): RedisLike {
  const resolved: RedisEndpoint = typeof endpoint === 'string' ? { url: endpoint } : endpoint;
  const failFast: RedisOptions = {
    ...options,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
  };
  const name = `${describeRedisEndpoint(resolved)}${options.connectionName ? ` (${options.connectionName})` : ''}`;
  if ('url' in resolved) {
    const redis = new Redis(resolved.url, failFast);
    if (resolved.replyTimeoutMs) watchForSilence(redis, resolved.replyTimeoutMs, name);
    return redis;
  }
  const { lazyConnect, enableAutoPipelining, ...redisOptions } = failFast;
  const cluster = new Cluster(resolved.clusterNodes, {
    lazyConnect,
    enableAutoPipelining,
    enableOfflineQueue: false,
    // A failover moves slots: the client re-reads the slot map and retries on MOVED/ASK by itself.
    clusterRetryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    redisOptions,
  });
  if (resolved.replyTimeoutMs) watchForSilence(cluster, resolved.replyTimeoutMs, name);
  return cluster;
}

/**
 * Reconnects `redis` when its connection goes silent for `timeoutMs` (see SilentConnectionWatchdog), with a
 * warning naming the connection, until the client ends.
 */
export function watchForSilence(redis: RedisLike, timeoutMs: number, name: string): void {
  const stopWatching = SilentConnectionWatchdog.watch(redis, timeoutMs, (unansweredForMs) =>
    logger.warn(`${name}: a PING went unanswered for ${unansweredForMs} ms on an open connection; reconnecting`),
  );
  redis.once('end', stopWatching);
}
