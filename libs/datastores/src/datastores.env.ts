import { z } from 'zod';

/** Environment variables for the shared connections; apps merge this into their validated schema. */
export const datastoresEnv = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /**
   * Comma-separated `host:port` seeds of a Redis Cluster. When set, every feature runs on the Cluster and
   * REDIS_URL is not used.
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (!value?.trim()) return undefined;
      const nodes = value.split(',').map((seed) => seed.trim());
      const parsed = nodes.map((seed) => /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(seed));
      const bad = nodes.filter((_, i) => !parsed[i] || Number(parsed[i]![2]) > 65535);
      if (bad.length) {
        ctx.addIssue({ code: 'custom', message: `not host:port: ${bad.join(', ')}` });
        return z.NEVER;
      }
      return parsed.map((match) => ({ host: match![1].replace(/^\[|\]$/g, ''), port: Number(match![2]) }));
    }),
  /**
   * A Redis connection that looks open but leaves a PING unanswered this long (its peer vanished without a
   * reset, so no error ever comes) is reconnected, and the client sends its unanswered calls again (each
   * buffer call still runs once). 0 turns it off: calls on such a connection then wait until the OS drops
   * it. BullMQ's connections are given 10 s more (BULLMQ_LONGEST_BLOCK_MS). On a Cluster, node by node.
   */
  REDIS_REPLY_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  MONGO_URL: z.string().url().default('mongodb://127.0.0.1:27017'),
  MONGO_DB: z.string().min(1).default('bufferq'),
});
