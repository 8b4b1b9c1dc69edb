/**
 * The Redis keys of one buffer namespace. The `{namespace}` hash tag puts them all in one Cluster slot,
 * which the multi-key scripts require.
 */
export interface BufferKeys {
  live: string;
  draining: string;
  drainingBatchId: string;
  /** '2' while the draining batch was cut by this version (markers scoped to the buffer). */
  drainingFormat: string;
  batchSequence: string;
  /** Where the last cut of a backlog stopped scanning the live hash. */
  cutCursor: string;
  lock: string;
  deadLetters: string;
  /** This buffer's random name inside each document's markers; created by the first claim. */
  scope: string;
  /** A producer instance's highest call number and recent refusals, so a re-sent call is a no-op. */
  caller(callerId: string): string;
  /** The numbers of a producer instance's last calls that ran (a fixed-width ring in one string). */
  callerRing(callerId: string): string;
}

export function bufferKeys(keyPrefix: string, namespace: string): BufferKeys {
  const base = `${keyPrefix}:{${namespace}}`;
  return {
    live: `${base}:live`,
    draining: `${base}:draining`,
    drainingBatchId: `${base}:draining-id`,
    drainingFormat: `${base}:draining-format`,
    batchSequence: `${base}:seq`,
    cutCursor: `${base}:cut-cursor`,
    lock: `${base}:lock`,
    deadLetters: `${base}:dead-letters`,
    scope: `${base}:scope`,
    caller: (callerId) => `${base}:caller:${callerId}`,
    callerRing: (callerId) => `${base}:caller:${callerId}:ring`,
  };
}

/**
 * The keys of shard `index` of a buffer spread over `count` shards: `{namespace}` when unsharded (as
 * buffers always were), `{namespace:index}` otherwise, so each shard has a hash slot of its own.
 */
export function shardKeys(keyPrefix: string, namespace: string, count: number, index: number): BufferKeys {
  return bufferKeys(keyPrefix, count === 1 ? namespace : `${namespace}:${index}`);
}

/** Field of the live and draining hashes that holds when the oldest pending update arrived (ms). */
export const SINCE_FIELD = '#since';
/** Field of the live and draining hashes that numbers `$set` calls, to fold parent and child paths. */
export const SET_ORDER_FIELD = '#seq';

/**
 * Markers: each document holds, per buffer scope, the last applied round of that buffer's batches:
 * `batchId * ROUNDS_PER_BATCH + round`. A document's last round of a batch is always
 * `ROUNDS_PER_BATCH - 1`, so "batch B is fully in this document" is `marker >= completeMarker(B)`.
 */
export const ROUNDS_PER_BATCH = 256;
export const completeMarker = (batchId: number | bigint | string): number =>
  Number(BigInt(batchId) * BigInt(ROUNDS_PER_BATCH) + BigInt(ROUNDS_PER_BATCH - 1));
/** Batches cut by versions with one marker per document (format 1) used `batchId * 4 + phase`, inc last. */
export const legacyCompleteMarker = (batchId: number | bigint | string): number => Number(BigInt(batchId) * 4n + 3n);
