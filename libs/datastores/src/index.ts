export { DatastoresModule, createRedisClient } from './datastores.module';
export type { DatastoresOptions, DatastoresAsyncOptions } from './datastores.module';
export { MONGO_CLIENT, MONGO_DB, REDIS_CLIENT } from './datastores.tokens';
export { datastoresEnv } from './datastores.env';
export { bullmqConnection } from './bullmq-connection';
