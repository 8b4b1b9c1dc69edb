import { z } from 'zod';

/**
 * Environment variables of the timers capability; the api and worker env schemas extend with this shape.
 * Intervals are configurable so tests can run the whole life cycle in seconds.
 */
export const timersEnv = z.object({
  /** Longest delay a timer may ask for (hours + minutes + seconds), in seconds. Default 30 days. */
  TIMERS_MAX_DELAY_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(30 * 24 * 3600),
  TIMERS_MAX_URL_LENGTH: z.coerce.number().int().min(16).max(8192).default(2048),
  /** HMAC-SHA256 key for the `webhook-signature` header. The default is for local runs only. */
  TIMERS_SIGNING_SECRET: z.string().min(16).default('local-dev-timers-signing-secret'),
  TIMERS_DELIVERY_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Attempts per timer (first try included) before it becomes `failed`. */
  TIMERS_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(8),
  TIMERS_BACKOFF_BASE_MS: z.coerce.number().int().min(1).default(1_000),
  TIMERS_BACKOFF_MAX_MS: z.coerce.number().int().min(1).default(3_600_000),
  /** How often each worker moves due timers from the Redis due index to the delivery queue. */
  TIMERS_SCHEDULER_POLL_MS: z.coerce.number().int().min(5).default(100),
  /**
   * Timers moved per claim; also the most claimed timers waiting in the delivery queue, and the most
   * armed timers (claimed ahead of their run time) a worker holds.
   */
  TIMERS_SCHEDULER_BATCH: z.coerce.number().int().min(1).max(100_000).default(1_000),
  /**
   * How far ahead of their run time timers are claimed (armed): the worker holds them and sends each one
   * at its run time, so a burst costs only its POSTs when it falls due. 0: claim only due timers.
   */
  TIMERS_SCHEDULER_LOOKAHEAD_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  /** How often the reconciler re-adds pending timers due within two periods from MongoDB to Redis. */
  TIMERS_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(50).default(60_000),
  /**
   * How long a claimed timer stays with a worker that stopped renewing its lease (it died) before another
   * worker claims and sends it again; also the delivery job lock. Claimed timers wait in the delivery
   * queue at most this long before their lease must be renewed by the worker that runs them.
   */
  TIMERS_DELIVERY_LOCK_MS: z.coerce.number().int().min(500).default(30_000),
  /** Deliveries (requests) in flight per worker process. */
  TIMERS_DELIVERY_CONCURRENCY: z.coerce.number().int().min(1).max(10_000).default(100),
  /** Timers per delivery queue job: due timers travel from the scheduler to a worker in such batches. */
  TIMERS_DELIVERY_BATCH: z.coerce.number().int().min(1).max(5_000).default(200),
  /**
   * POSTs a worker sends at start to a throwaway server of its own (never to a timer's target), so its
   * sending path is compiled by the JIT before the first burst falls due. 0: none.
   */
  TIMERS_DELIVERY_WARMUP_POSTS: z.coerce.number().int().min(0).max(100_000).default(10_000),
  /** Deliveries in flight per target host within a worker process. */
  TIMERS_MAX_CONCURRENCY_PER_HOST: z.coerce.number().int().min(1).default(20),
  /** Allow webhook targets on loopback, private and link-local addresses (local runs and tests). */
  TIMERS_ALLOW_PRIVATE_TARGETS: z.stringbool().default(false),
  /**
   * Prefix of the due-index keys (their hash tag) and of the delivery queue's name, so deployments (and
   * tests) can share a Redis.
   */
  TIMERS_REDIS_PREFIX: z
    .string()
    .min(1)
    .regex(/^[A-Za-z0-9_.-]+$/)
    .default('timers'),
  /**
   * Shards of the due index, each in a hash slot of its own: on a Redis Cluster more shards spread the
   * schedule, and the work of claiming it, over more nodes. A timer's shard is a hash of its id.
   */
  TIMERS_DUE_INDEX_SHARDS: z.coerce.number().int().min(1).max(256).default(1),
});

export type TimersEnv = z.infer<typeof timersEnv>;
