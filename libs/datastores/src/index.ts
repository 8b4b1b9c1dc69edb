export { DatastoresModule } from './datastores.module';
export { createRedisClient, describeRedisEndpoint, redisEndpointFromConfig, redisEndpointOf } from './redis-endpoint';
export type { RedisEndpoint } from './redis-endpoint';
export type { DatastoresOptions, DatastoresAsyncOptions } from './datastores.module';
export { MONGO_DB, REDIS_CLIENT, REDIS_ENDPOINT } from './datastores.tokens';
export { datastoresEnv } from './datastores.env';
export { BULLMQ_LONGEST_BLOCK_MS, bullmqConnection, hashTaggedQueueName } from './bullmq-connection';
