/**
 * The BullMQ queue that carries `flush` jobs for every buffered collection. The braces are a Redis Cluster hash
 * tag: every key of the queue lives in one slot, as BullMQ's scripts require, and each queue in its own.
 */
export const FLUSH_QUEUE = '{buffered-increments-flush}';
export const FLUSH_JOB = 'flush';

/**
 * Default lock of a running flush job (renewed while its worker lives): after a worker dies mid-flush,
 * the next flush runs within about twice this.
 */
export const FLUSH_JOB_LOCK_MS = 30_000;

/** Finished flush jobs kept for the dashboard. */
export const FLUSH_JOB_RETENTION = { removeOnComplete: { count: 200 }, removeOnFail: { count: 500 } };

export const BUFFERED_INCREMENTS_ROOT = Symbol('BUFFERED_INCREMENTS_ROOT');
export const BUFFERED_INCREMENTS_REDIS = Symbol('BUFFERED_INCREMENTS_REDIS');
export const BUFFERED_INCREMENTS_DB = Symbol('BUFFERED_INCREMENTS_DB');
export const BUFFERED_INCREMENTS_FLUSHERS = Symbol('BUFFERED_INCREMENTS_FLUSHERS');

/** Injection token of a producer: by collection, or by namespace when several buffers share a collection. */
export function bufferedIncrementsToken(collectionOrNamespace: string): string {
  return `BufferedMongoIncrements:${collectionOrNamespace}`;
}

export interface FlushJobData {
  collection: string;
  /** Which buffer of the collection (its namespace); absent for a collection with one default buffer. */
  buffer?: string;
  /** Which shard of a sharded buffer (shard 0 also drains retired shards); absent = every shard. */
  shard?: number;
}
