/**
 * Which of `count` shards a key belongs to: FNV-1a of the key, so every process (producers, flushers, api
 * and workers) agrees without talking. Shards are spread over Cluster slots by their hash tags.
 */
export function shardOf(key: string, count: number): number {
  if (count === 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % count;
}
