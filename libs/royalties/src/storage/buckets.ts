/**
 * Per-user and per-track rows are stored in buckets of about this many entries, one document per bucket,
 * keyed `<buildId>/<bucket>`; an entry's bucket is a hash of its id. A million users become ~4,000
 * documents: writes are a few hundred inserts, and every read (one user, a page, the users and tracks of
 * a consolidated page) is a handful of `_id` lookups. On a MongoDB-wire server without index pushdown
 * (FerretDB 1.24 scans the collection for `_id` queries) that is what keeps reads fast.
 */
export const ENTRIES_PER_BUCKET = 256;

export function bucketCountFor(entries: number): number {
  return Math.max(1, Math.ceil(entries / ENTRIES_PER_BUCKET));
}

/** FNV-1a over UTF-16 code units: stable across processes and versions, cheap, well spread for ids. */
export function bucketOf(id: string, bucketCount: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % bucketCount;
}

export const bucketId = (buildId: string, bucket: number) => `${buildId}/${bucket}`;

/**
 * Groups entry indexes 0..n-1 by bucket with a counting sort: two typed arrays instead of n objects.
 * Returns the indexes ordered by bucket and where each bucket starts in that order.
 */
export function groupByBucket(
  keys: readonly string[],
  bucketCount: number,
): { order: Uint32Array; starts: Uint32Array } {
  const bucketOfEntry = new Uint32Array(keys.length);
  const starts = new Uint32Array(bucketCount + 1);
  keys.forEach((key, i) => {
    const bucket = bucketOf(key, bucketCount);
    bucketOfEntry[i] = bucket;
    starts[bucket + 1]++;
  });
  for (let b = 0; b < bucketCount; b++) starts[b + 1] += starts[b];
  const next = starts.slice(0, bucketCount);
  const order = new Uint32Array(keys.length);
  for (let i = 0; i < keys.length; i++) order[next[bucketOfEntry[i]]++] = i;
  return { order, starts };
}
