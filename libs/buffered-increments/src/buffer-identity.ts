import type { BufferedCollection } from './buffered-increments.options';

/** What names one buffer in the module: its namespace when set, else its collection. */
export function bufferKeyOf(feature: BufferedCollection): string {
  return feature.options?.namespace ?? feature.collection;
}

/** Two buffers with one key would share a producer token, a flusher and a schedule: one would never flush. */
export function assertDistinctBuffers(features: BufferedCollection[]): void {
  const seen = new Set<string>();
  for (const feature of features) {
    const key = bufferKeyOf(feature);
    if (seen.has(key)) {
      throw new Error(
        `two buffered collections are both named '${key}': give each buffer of one collection its own options.namespace`,
      );
    }
    seen.add(key);
  }
}
