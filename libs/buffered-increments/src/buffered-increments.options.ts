import type { DynamicModule } from '@nestjs/common';
import type { Db } from 'mongodb';
import type { BufferedMongoIncrementsOptions } from './buffered-mongo-increments';
import type { RedisLike } from '@bufferq/redis-scripts';

type SharedOptions = Omit<BufferedMongoIncrementsOptions, 'autoFlush' | 'onBufferFull'>;

export interface BufferedIncrementsRootOptions {
  /** A connected ioredis client (or Cluster), or a Redis URL to open one. */
  redis: RedisLike | string;
  /** A mongodb `Db`, or a URL (and database name) to open one. */
  mongo: Db | { url: string; dbName?: string };
  /** Flush period (ms) of every collection that sets none. Default 1,000. */
  flushIntervalMs?: number;
  /** Lock of a running flush job (see BufferedIncrementsWorkerOptions); forWorker's option wins. */
  flushJobLockMs?: number;
  /** Defaults for every collection's buffer. */
  defaults?: SharedOptions;
}

export interface BufferedIncrementsRootAsyncOptions {
  imports?: DynamicModule['imports'];
  inject?: unknown[];
  useFactory: (...args: never[]) => BufferedIncrementsRootOptions | Promise<BufferedIncrementsRootOptions>;
}

/**
 * One buffered collection: its flush period and any per-collection overrides. Several buffers may write
 * one collection (an "activity" and a "billing" buffer): give each an `options.namespace`; producers,
 * flushers and schedules are then keyed by namespace.
 */
export interface BufferedCollection {
  collection: string;
  /** Flush period in ms; the root's `flushIntervalMs` when not set. */
  flushIntervalMs?: number;
  options?: SharedOptions;
}

/** A collection as it runs: its own settings over the root's. */
export interface ResolvedCollection {
  collection: string;
  flushIntervalMs: number;
  options: SharedOptions;
}

export const DEFAULT_FLUSH_INTERVAL_MS = 1_000;

/** The one place a collection's settings are merged over forRoot's, for producers, flushers and schedules. */
export function resolveCollection(
  feature: BufferedCollection,
  root: BufferedIncrementsRootOptions,
): ResolvedCollection {
  return {
    collection: feature.collection,
    flushIntervalMs: feature.flushIntervalMs ?? root.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
    options: { ...root.defaults, ...feature.options },
  };
}

/** Settings of the flush processor `forWorker` runs. */
export interface BufferedIncrementsWorkerOptions {
  /**
   * Lock of a running flush job in ms (default 30,000). A live worker renews it; after a worker dies
   * mid-flush, or a Redis failover loses the job's completion, the next flush runs within about twice this.
   */
  flushJobLockMs?: number;
}
