/** Injection tokens for the shared connections. One Redis client and one MongoDB client per process. */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
export const MONGO_CLIENT = Symbol('MONGO_CLIENT');
export const MONGO_DB = Symbol('MONGO_DB');
/** Where Redis is (a RedisEndpoint): for libs that open connections of their own (BullMQ, rate limits). */
export const REDIS_ENDPOINT = Symbol('REDIS_ENDPOINT');
