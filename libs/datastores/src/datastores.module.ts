import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { Redis, RedisOptions } from 'ioredis';
import { MongoClient } from 'mongodb';
import { MONGO_CLIENT, MONGO_DB, REDIS_CLIENT } from './datastores.tokens';

export interface DatastoresOptions {
  redisUrl: string;
  mongoUrl: string;
  /** Database name; when absent, the one in the MongoDB URL (or `bufferq`). */
  mongoDb?: string;
}

export interface DatastoresAsyncOptions {
  imports?: DynamicModule['imports'];
  inject?: unknown[];
  useFactory: (...args: never[]) => DatastoresOptions | Promise<DatastoresOptions>;
}

const OPTIONS = Symbol('DATASTORES_OPTIONS');

/**
 * The process's shared Redis and MongoDB connections. Commands fail fast while Redis is unreachable
 * (no offline queue), so callers get a clear error instead of a request that hangs until reconnect.
 */
@Global()
@Module({})
export class DatastoresModule implements OnApplicationShutdown {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(MONGO_CLIENT) private readonly mongo: MongoClient,
  ) {}

  static forRoot(options: DatastoresOptions): DynamicModule {
    return DatastoresModule.forRootAsync({ useFactory: () => options });
  }

  static forRootAsync(options: DatastoresAsyncOptions): DynamicModule {
    return {
      module: DatastoresModule,
      imports: options.imports ?? [],
      providers: [
        { provide: OPTIONS, inject: (options.inject ?? []) as never[], useFactory: options.useFactory },
        {
          provide: REDIS_CLIENT,
          inject: [OPTIONS],
          useFactory: async (o: DatastoresOptions) => {
            const redis = createRedisClient(o.redisUrl, { lazyConnect: true });
            await redis.connect();
            return redis;
          },
        },
        {
          provide: MONGO_CLIENT,
          inject: [OPTIONS],
          useFactory: (o: DatastoresOptions) =>
            new MongoClient(o.mongoUrl, { serverSelectionTimeoutMS: 5_000 }).connect(),
        },
        {
          provide: MONGO_DB,
          inject: [OPTIONS, MONGO_CLIENT],
          useFactory: (o: DatastoresOptions, client: MongoClient) => client.db(o.mongoDb || undefined),
        },
      ],
      exports: [REDIS_CLIENT, MONGO_CLIENT, MONGO_DB],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.redis.quit(), this.mongo.close()]);
  }
}

/** A Redis client for commands (not for BullMQ, which wants its own blocking connections). */
export function createRedisClient(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    ...options,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
  });
}
