/**
 * The Redis keys of one buffer namespace. The `{namespace}` hash tag puts them all in one Cluster slot,
 * which the multi-key scripts require.
 */
export interface BufferKeys {
  live: string;
  draining: string;
  drainingBatchId: string;
  batchSequence: string;
  lock: string;
  deadLetters: string;
}

export function bufferKeys(keyPrefix: string, namespace: string): BufferKeys {
  const base = `${keyPrefix}:{${namespace}}`;
  return {
    live: `${base}:live`,
    draining: `${base}:draining`,
    drainingBatchId: `${base}:draining-id`,
    batchSequence: `${base}:seq`,
    lock: `${base}:lock`,
    deadLetters: `${base}:dead-letters`,
  };
}

/** Field of the live and draining hashes that holds when the oldest pending update arrived (ms). */
export const SINCE_FIELD = '#since';
