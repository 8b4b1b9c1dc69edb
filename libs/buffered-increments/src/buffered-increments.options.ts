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
  flushIntervalMs: number;
  options?: SharedOptions;
}

/** Settings of the flush processor `forWorker` runs. */
export interface BufferedIncrementsWorkerOptions {
  /**
   * Lock of a running flush job in ms (default 30,000). A live worker renews it; after a worker dies
   * mid-flush the next flush runs within about twice this.
   */
  flushJobLockMs?: number;
}
