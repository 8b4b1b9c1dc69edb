import { isIP } from 'node:net';
import { z } from 'zod';
import type { ProductionSecret } from '@bufferq/config';

/** The default dashboard credentials, for local runs; production refuses the password (BOARD_PASSWORD_SECRET). */
export const DEFAULT_BOARD_USER = 'admin';
export const DEFAULT_BOARD_PASSWORD = 'admin';

/** The dashboard password is a production secret while the dashboard is on; docker-compose.yml once defaulted to the other value. */
export const BOARD_PASSWORD_SECRET: ProductionSecret = {
  name: 'BOARD_PASSWORD',
  alsoPublished: ['change-me-please'],
  inUse: (env) => env.BOARD_ENABLED !== false,
};

const commaSeparated = z
  .string()
  .default('')
  .transform((list) =>
    list
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );

/** The named ranges Fastify's trustProxy (proxy-addr) knows. */
const NAMED_PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal'];

function isProxyAddressOrRange(entry: string): boolean {
  if (NAMED_PROXY_RANGES.includes(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

/**
 * Which peers may tell the client address in X-Forwarded-For: none (`false`, the default: the socket
 * address is the client), every hop (`true`: only when a proxy that overwrites the header fronts every
 * request), or the listed proxy addresses / CIDR ranges. Fastify's `trustProxy` takes the result.
 */
const trustProxySetting = z
  .string()
  .default('false')
  .transform((value, ctx): boolean | string[] => {
    const setting = value.trim().toLowerCase();
    if (setting === '' || setting === 'false') return false;
    if (setting === 'true') return true;
    const entries = value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
    const unknown = entries.filter((entry) => !isProxyAddressOrRange(entry));
    if (unknown.length) {
      ctx.addIssue({
        code: 'custom',
        message: `true, false, or proxy addresses / CIDR ranges / ${NAMED_PROXY_RANGES.join(' / ')}; not: ${unknown.join(', ')}`,
      });
      return z.NEVER;
    }
    return entries;
  });

/** Environment variables of the operations capability (health, metrics, access, dashboard). */
export const operationsEnv = z.object({
  /** Comma-separated API keys; when set, every route except health and metrics needs `x-api-key`. */
  API_KEYS: commaSeparated,
  /** Requests one client (API key, else IP address) may make per window; 0 turns rate limiting off. */
  RATE_LIMIT_MAX: z.coerce.number().int().min(0).default(6_000),
  RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(100).default(60_000),
  /** Proxies whose X-Forwarded-For names the client (rate limits, dashboard logins); none by default. */
  TRUST_PROXY: trustProxySetting,
  /** Bull Board at /admin/queues behind basic auth; off with BOARD_ENABLED=false. */
  BOARD_ENABLED: z.stringbool().default(true),
  BOARD_USER: z.string().min(1).default(DEFAULT_BOARD_USER),
  BOARD_PASSWORD: z.string().min(1).default(DEFAULT_BOARD_PASSWORD),
  /** Read-only board: operators see jobs but cannot retry, promote, clean or remove them. */
  BOARD_READ_ONLY: z.stringbool().default(false),
  /** Failed dashboard logins one client address may make per window; more get 429 until the window ends. */
  BOARD_LOGIN_MAX_FAILURES: z.coerce.number().int().min(1).default(10),
  BOARD_LOGIN_WINDOW_MS: z.coerce.number().int().min(1_000).default(60_000),
});

export type OperationsEnv = z.infer<typeof operationsEnv> & { NODE_ENV?: string };
