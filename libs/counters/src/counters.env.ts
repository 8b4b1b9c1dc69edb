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
  /**
   * Lock of a running flush job: a live worker renews it; after a worker dies mid-flush, or a Redis failover
   * loses the job's completion, the next flush runs within about twice this.
   */
  COUNTERS_FLUSH_JOB_LOCK_MS: z.coerce.number().int().min(1_000).default(30_000),
  /**
   * Replicas that must hold a flush's claim before MongoDB is written (the buffer's `waitForReplicas`): on a
   * replicated Redis (Sentinel, Cluster) set it to the replicas a failover may promote, so a promoted replica
   * never hands out an applied batch again.
   */
  COUNTERS_WAIT_FOR_REPLICAS: z.coerce.number().int().min(0).max(16).default(0),
  /**
   * How long an accepted increment may wait in the api for others to go to Redis with it in one script
   * call (the buffer's `lingerMs`); its 202 comes up to that much later. 0: the increments read in one
   * event-loop turn go together, which under load is many; an api that is far from saturated then sends
   * about one call per request, and a few ms here spare Redis those calls.
   */
  COUNTERS_LINGER_MS: z.coerce.number().int().min(0).max(1_000).default(0),
  /**
   * Flush lag bound: an oldest unflushed increment older than this shows the flush down in `/health/ready`'s
   * details and in `health_check_up{check="flush"}`; the api stays ready, since increments are still accepted.
   */
  READY_MAX_FLUSH_LAG_MS: z.coerce.number().int().min(1).default(30_000),
});

export type CountersEnv = z.infer<typeof countersEnv>;
