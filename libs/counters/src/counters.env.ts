import { z } from 'zod';

/** Environment variables of the counters capability; the api and worker env schemas extend with this shape. */
export const countersEnv = z.object({
  /** How often the worker writes buffered counter increments to MongoDB. */
  COUNTERS_FLUSH_INTERVAL_MS: z.coerce.number().int().min(10).default(1_000),
  /**
   * Most counter fields the Redis buffer holds (MongoDB away for long): past it an increment of a key not
   * yet buffered is refused (503), increments of buffered keys still succeed. Bounds Redis memory.
   */
  COUNTERS_BUFFER_LIMIT_FIELDS: z.coerce.number().int().min(1).default(5_000_000),
});

export type CountersEnv = z.infer<typeof countersEnv>;
