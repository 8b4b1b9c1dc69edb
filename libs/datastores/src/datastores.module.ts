import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { MongoClient } from 'mongodb';
import { readCapabilityConfig } from '@bufferq/config';
import { datastoresEnv } from './datastores.env';
import type { RedisLike } from '@bufferq/redis-scripts';
import { MONGO_CLIENT, MONGO_DB, REDIS_CLIENT, REDIS_ENDPOINT } from './datastores.tokens';
import { createRedisClient, RedisEndpoint } from './redis-endpoint';

export interface DatastoresOptions {
  redisUrl: string;
  /** Seed nodes of a Redis Cluster; when given, every Redis client of the process talks to the Cluster. */
  redisClusterNodes?: Array<{ host: string; port: number }>;
  /** A single server's connection gone silent this long is reconnected (see `RedisEndpoint`); 0: never. */
  redisReplyTimeoutMs?: number;
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
    @Inject(REDIS_CLIENT) private readonly redis: RedisLike,
    @Inject(MONGO_CLIENT) private readonly mongo: MongoClient,
  ) {}

  /** The connections the app's validated config names (REDIS_URL or REDIS_CLUSTER_NODES, MONGO_URL, MONGO_DB). */
  static forRootFromConfig(): DynamicModule {
    return DatastoresModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) => {
        const settings = readCapabilityConfig(datastoresEnv, (key) => config.get(key));
        return {
          redisUrl: settings.REDIS_URL,
          redisClusterNodes: settings.REDIS_CLUSTER_NODES,
          redisReplyTimeoutMs: settings.REDIS_REPLY_TIMEOUT_MS,
          mongoUrl: settings.MONGO_URL,
          mongoDb: settings.MONGO_DB,
        };
      },
    });
  }

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
          provide: REDIS_ENDPOINT,
          inject: [OPTIONS],
          useFactory: (o: DatastoresOptions): RedisEndpoint =>
            o.redisClusterNodes?.length
              ? { clusterNodes: o.redisClusterNodes, replyTimeoutMs: o.redisReplyTimeoutMs }
              : { url: o.redisUrl, replyTimeoutMs: o.redisReplyTimeoutMs },
        },
        {
          provide: REDIS_CLIENT,
          inject: [REDIS_ENDPOINT],
          useFactory: async (endpoint: RedisEndpoint) => {
            const redis = createRedisClient(endpoint, { lazyConnect: true });
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
      exports: [REDIS_ENDPOINT, REDIS_CLIENT, MONGO_CLIENT, MONGO_DB],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([this.redis.quit(), this.mongo.close()]);
  }
}
