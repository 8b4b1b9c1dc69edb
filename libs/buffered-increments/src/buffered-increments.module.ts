import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { DynamicModule, Global, Inject, Logger, Module, OnApplicationShutdown, Provider } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { Db, MongoClient } from 'mongodb';
import {
  BUFFERED_INCREMENTS_DB,
  BUFFERED_INCREMENTS_FLUSHERS,
  BUFFERED_INCREMENTS_REDIS,
  BUFFERED_INCREMENTS_ROOT,
  bufferedIncrementsToken,
  FLUSH_JOB,
  FLUSH_JOB_LOCK_MS,
  FLUSH_QUEUE,
} from './buffered-increments.constants';
import {
  BufferedCollection,
  BufferedIncrementsRootAsyncOptions,
  BufferedIncrementsRootOptions,
  BufferedIncrementsWorkerOptions,
  ResolvedCollection,
  resolveCollection,
} from './buffered-increments.options';
import { BufferedMongoIncrements } from './buffered-mongo-increments';
import { FLUSH_SCHEDULE_COLLECTIONS, FlushSchedule } from './flush-schedule';
import { FlushProcessor, flushProcessorWithLock } from './flush.processor';
import type { RedisLike } from '@bufferq/redis-scripts';
import { assertDistinctBuffers, bufferKeyOf } from './buffer-identity';

/** Connections this module opened itself (from URLs) and must close; given clients belong to the caller. */
const OWNED_CONNECTIONS = Symbol('BUFFERED_INCREMENTS_OWNED_CONNECTIONS');
const logger = new Logger('BufferedIncrements');
type OwnedConnections = Array<{ close(): Promise<unknown> }>;

/**
 * NestJS face of the buffer. `forRoot` sets the connections once; `forFeature` gives app services an
 * injectable producer per collection (producers only buffer; a full buffer enqueues an early flush job);
 * `forWorker` runs the flush processor and the per-collection job schedulers.
 */
@Global()
@Module({})
export class BufferedIncrementsModule implements OnApplicationShutdown {
  constructor(@Inject(OWNED_CONNECTIONS) private readonly owned: OwnedConnections) {}

  static forRoot(options: BufferedIncrementsRootOptions): DynamicModule {
    return BufferedIncrementsModule.forRootAsync({ useFactory: () => options });
  }

  static forRootAsync(options: BufferedIncrementsRootAsyncOptions): DynamicModule {
    const owned: OwnedConnections = [];
    return {
      module: BufferedIncrementsModule,
      imports: [...(options.imports ?? []), BullModule.registerQueue({ name: FLUSH_QUEUE })],
      providers: [
        { provide: OWNED_CONNECTIONS, useValue: owned },
        {
          provide: BUFFERED_INCREMENTS_ROOT,
          inject: (options.inject ?? []) as never[],
          useFactory: options.useFactory,
        },
        {
          provide: BUFFERED_INCREMENTS_REDIS,
          inject: [BUFFERED_INCREMENTS_ROOT],
          useFactory: async ({ redis }: BufferedIncrementsRootOptions): Promise<RedisLike> => {
            if (typeof redis !== 'string') return redis;
            // Producers fail fast while Redis is away rather than queueing updates in process memory.
            const client = new Redis(redis, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
            await client.connect();
            owned.push({ close: () => client.quit() });
            return client;
          },
        },
        {
          provide: BUFFERED_INCREMENTS_DB,
          inject: [BUFFERED_INCREMENTS_ROOT],
          useFactory: async ({ mongo }: BufferedIncrementsRootOptions): Promise<Db> => {
            if (mongo instanceof Db) return mongo;
            const client = await new MongoClient(mongo.url).connect();
            owned.push({ close: () => client.close() });
            return client.db(mongo.dbName);
          },
        },
      ],
      exports: [BUFFERED_INCREMENTS_ROOT, BUFFERED_INCREMENTS_REDIS, BUFFERED_INCREMENTS_DB, BullModule],
    };
  }

  /** Injectable producers, one per collection: `@InjectBufferedIncrements('users')`. */
  static forFeature(collections: BufferedCollection[]): DynamicModule {
    assertDistinctBuffers(collections);
    const providers: Provider[] = collections.map((feature) => ({
      provide: bufferedIncrementsToken(bufferKeyOf(feature)),
      inject: [BUFFERED_INCREMENTS_ROOT, BUFFERED_INCREMENTS_REDIS, BUFFERED_INCREMENTS_DB, getQueueToken(FLUSH_QUEUE)],
      useFactory: (root: BufferedIncrementsRootOptions, redis: RedisLike, db: Db, queue: Queue) => {
        const resolved = resolveCollection(feature, root);
        return logReconnects(
          new BufferedMongoIncrements(db.collection(feature.collection), redis, resolved.flushIntervalMs, {
            ...resolved.options,
            autoFlush: false,
            onBufferFull: () => requestEarlyFlush(queue, feature),
          }),
        );
      },
    }));
    return { module: BufferedIncrementsFeatureModule, providers, exports: providers };
  }

  /** The flush processor and one job scheduler per collection; for the worker app only. */
  static forWorker(collections: BufferedCollection[], options: BufferedIncrementsWorkerOptions = {}): DynamicModule {
    assertDistinctBuffers(collections);
    return {
      module: BufferedIncrementsWorkerModule,
      providers: [
        {
          provide: FLUSH_SCHEDULE_COLLECTIONS,
          inject: [BUFFERED_INCREMENTS_ROOT],
          useFactory: (root: BufferedIncrementsRootOptions) =>
            collections.map((feature) => resolveCollection(feature, root)),
        },
        {
          provide: BUFFERED_INCREMENTS_FLUSHERS,
          inject: [FLUSH_SCHEDULE_COLLECTIONS, BUFFERED_INCREMENTS_REDIS, BUFFERED_INCREMENTS_DB],
          useFactory: (resolved: ResolvedCollection[], redis: RedisLike, db: Db) =>
            new Map(
              resolved.map((feature) => [
                bufferKeyOf(feature),
                logReconnects(
                  new BufferedMongoIncrements(db.collection(feature.collection), redis, feature.flushIntervalMs, {
                    ...feature.options,
                    autoFlush: false,
                  }),
                ),
              ]),
            ),
        },
        {
          // The lock may come from forRoot's async options, known only once they are resolved.
          provide: FlushProcessor,
          inject: [BUFFERED_INCREMENTS_FLUSHERS, FLUSH_SCHEDULE_COLLECTIONS, BUFFERED_INCREMENTS_ROOT],
          useFactory: (
            flushers: Map<string, BufferedMongoIncrements>,
            resolved: ResolvedCollection[],
            root: BufferedIncrementsRootOptions,
          ) => {
            const lockMs = options.flushJobLockMs ?? root.flushJobLockMs ?? FLUSH_JOB_LOCK_MS;
            return new (flushProcessorWithLock(lockMs))(flushers, resolved);
          },
        },
        FlushSchedule,
      ],
      exports: [BUFFERED_INCREMENTS_FLUSHERS],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled(this.owned.splice(0).map((connection) => connection.close()));
  }
}

/** Producers and flushers alike say when their client's connection went silent and was reconnected. */
function logReconnects(buffer: BufferedMongoIncrements): BufferedMongoIncrements {
  buffer.on('replyTimeout', ({ unansweredForMs }: { unansweredForMs: number }) =>
    logger.warn(
      `${buffer.namespace}: a PING went unanswered for ${unansweredForMs} ms on an open Redis connection; reconnecting to send the unanswered calls again`,
    ),
  );
  return buffer;
}

@Module({})
class BufferedIncrementsFeatureModule {}

@Module({})
class BufferedIncrementsWorkerModule {}

/** Early flush from a producer: one pending job per collection, however many producers ask. */
function requestEarlyFlush(queue: Queue, feature: BufferedCollection): Promise<unknown> {
  const buffer = bufferKeyOf(feature);
  const data = { collection: feature.collection, ...(buffer !== feature.collection ? { buffer } : {}) };
  return queue.add(FLUSH_JOB, data, { jobId: `early-flush-${buffer}`, removeOnComplete: true, removeOnFail: true });
}
