import { z } from 'zod';

/** The default dashboard credentials; the api refuses to start the board with them in production. */
export const DEFAULT_BOARD_USER = 'admin';
export const DEFAULT_BOARD_PASSWORD = 'admin';

const commaSeparated = z
  .string()
  .default('')
  .transform((list) => list.split(',').map((item) => item.trim()).filter(Boolean));

/** Environment variables of the operations capability (health, metrics, access, dashboard). */
export const operationsEnv = z.object({
  /** Comma-separated API keys; when set, every route except health and metrics needs `x-api-key`. */
  API_KEYS: commaSeparated,
  /** Requests one client (API key, else IP address) may make per window; 0 turns rate limiting off. */
  RATE_LIMIT_MAX: z.coerce.number().int().min(0).default(6_000),
  RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(100).default(60_000),
  /** `/health/ready` reports not ready when the oldest unflushed increment is older than this. */
  READY_MAX_FLUSH_LAG_MS: z.coerce.number().int().min(1).default(30_000),
  /** Bull Board at /admin/queues behind basic auth; off with BOARD_ENABLED=false. */
  BOARD_ENABLED: z.stringbool().default(true),
  BOARD_USER: z.string().min(1).default(DEFAULT_BOARD_USER),
  BOARD_PASSWORD: z.string().min(1).default(DEFAULT_BOARD_PASSWORD),
  /** Read-only board: operators see jobs but cannot retry, promote, clean or remove them. */
  BOARD_READ_ONLY: z.stringbool().default(false),
});

export type OperationsEnv = z.infer<typeof operationsEnv> & { NODE_ENV?: string };
