export { DatastoresModule, createRedisClient } from './datastores.module';
export type { DatastoresOptions, DatastoresAsyncOptions } from './datastores.module';
export { MONGO_CLIENT, MONGO_DB, REDIS_CLIENT } from './datastores.tokens';
export { datastoresEnv } from './datastores.env';
export { validatedEnv } from './validated-env';
export { bullmqConnection } from './bullmq-connection';
export { refuseUnsafeSecretsInProduction, PRODUCTION_SECRET_MIN_LENGTH } from './production-secrets';
export type { ProductionSecret } from './production-secrets';
