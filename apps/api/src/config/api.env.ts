import { z } from 'zod';
import { refuseUnsafeSecretsInProduction } from '@bufferq/config';
import { datastoresEnv } from '@bufferq/datastores';
import { timersEnv } from '@bufferq/timers';
import { royaltiesEnv } from '@bufferq/royalties';
import { countersEnv } from '@bufferq/counters';
import { BOARD_PASSWORD_SECRET, operationsEnv } from '@bufferq/operations';
import { telemetryEnv } from '@bufferq/telemetry';

/**
 * Every environment variable the api reads, validated once at boot (see the README's configuration table).
 * In production it refuses published secrets: the webhook signing key and the dashboard password.
 */
const apiSettings = datastoresEnv.extend({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ...timersEnv.shape,
  ...royaltiesEnv.shape,
  ...countersEnv.shape,
  ...operationsEnv.shape,
  ...telemetryEnv.shape,
});
export const apiEnv = refuseUnsafeSecretsInProduction(apiSettings, [
  { name: 'TIMERS_SIGNING_SECRET' },
  BOARD_PASSWORD_SECRET,
]);

export type ApiEnv = z.infer<typeof apiEnv>;
