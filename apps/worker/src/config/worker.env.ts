import { z } from 'zod';
import { refuseUnsafeSecretsInProduction } from '@bufferq/config';
import { datastoresEnv } from '@bufferq/datastores';
import { timersEnv } from '@bufferq/timers';
import { royaltiesEnv } from '@bufferq/royalties';
import { countersEnv } from '@bufferq/counters';
import { metricsServerEnv } from '@bufferq/operations';
import { telemetryEnv } from '@bufferq/telemetry';
import { workerRolesSetting } from '../worker-roles';

/**
 * Every environment variable the worker reads, validated once at boot (see the README's configuration table).
 * In production it refuses a published webhook signing key.
 */
const workerSettings = datastoresEnv.extend({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  WORKER_ROLES: workerRolesSetting,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ...timersEnv.shape,
  ...royaltiesEnv.shape,
  ...countersEnv.shape,
  ...metricsServerEnv.shape,
  ...telemetryEnv.shape,
});
export const workerEnv = refuseUnsafeSecretsInProduction(workerSettings, [{ name: 'TIMERS_SIGNING_SECRET' }]);

export type WorkerEnv = z.infer<typeof workerEnv>;
