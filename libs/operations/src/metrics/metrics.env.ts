import { z } from 'zod';

/** Where a process without an HTTP api (the worker) serves `/metrics` and `/health/live`. */
export const metricsServerEnv = z.object({
  /** 0 picks a free port (tests); the port is logged. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  METRICS_HOST: z.string().min(1).default('0.0.0.0'),
});

export type MetricsServerEnv = z.infer<typeof metricsServerEnv>;
