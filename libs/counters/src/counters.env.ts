import { z } from 'zod';

/** Environment variables of the counters capability; the api and worker env schemas extend with this shape. */
export const countersEnv = z.object({
  /** How often the worker writes buffered counter increments to MongoDB. */
  COUNTERS_FLUSH_INTERVAL_MS: z.coerce.number().int().min(10).default(1_000),
});

export type CountersEnv = z.infer<typeof countersEnv>;
