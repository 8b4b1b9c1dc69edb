import { DynamicModule } from '@nestjs/common';
import { BufferedCollection, BufferedIncrementsModule } from '@bufferq/buffered-increments';
import { MONGO_DB, REDIS_CLIENT } from '@bufferq/datastores';
import { COUNTERS_COLLECTION } from './counters.constants';
import { countersEnv } from './counters.env';

/** The buffer's connections: the app's shared Redis client and MongoDB database (DatastoresModule). */
export function bufferedIncrementsRoot(): DynamicModule {
  return BufferedIncrementsModule.forRootAsync({
    inject: [REDIS_CLIENT, MONGO_DB],
    useFactory: (redis: never, mongo: never) => ({ redis, mongo }),
  });
}

/**
 * The buffered collections, from the validated environment when the modules are built. The flush
 * interval only matters to the worker's job scheduler (producers never flush); the buffer limit only to
 * producers (flushers never add fields).
 */
export function countersCollections(env: NodeJS.ProcessEnv = process.env): BufferedCollection[] {
  const { COUNTERS_FLUSH_INTERVAL_MS, COUNTERS_BUFFER_LIMIT_FIELDS } = countersEnv.parse(env);
  return [
    {
      collection: COUNTERS_COLLECTION,
      flushIntervalMs: COUNTERS_FLUSH_INTERVAL_MS,
      options: { bufferLimitFields: COUNTERS_BUFFER_LIMIT_FIELDS },
    },
  ];
}
