import { DynamicModule } from '@nestjs/common';
import { BufferedCollection, BufferedIncrementsModule } from '@bufferq/buffered-increments';
import { MONGO_DB, REDIS_CLIENT } from '@bufferq/datastores';
import { COUNTERS_CONFIG, CountersConfig, CountersConfigModule } from './counters.config';
import { COUNTERS_COLLECTION } from './counters.constants';

/**
 * The buffer's connections (the app's shared Redis client and MongoDB database) and its settings, read
 * from the validated config when the app is built. The flush interval only matters to the worker's job
 * scheduler (producers never flush); the buffer limit and the linger window only to producers.
 */
export function bufferedIncrementsRoot(): DynamicModule {
  return BufferedIncrementsModule.forRootAsync({
    imports: [CountersConfigModule],
    inject: [REDIS_CLIENT, MONGO_DB, COUNTERS_CONFIG],
    useFactory: (redis: never, mongo: never, config: CountersConfig) => ({
      redis,
      mongo,
      flushIntervalMs: config.COUNTERS_FLUSH_INTERVAL_MS,
      flushJobLockMs: config.COUNTERS_FLUSH_JOB_LOCK_MS,
      defaults: {
        bufferLimitFields: config.COUNTERS_BUFFER_LIMIT_FIELDS,
        waitForReplicas: config.COUNTERS_WAIT_FOR_REPLICAS,
        lingerMs: config.COUNTERS_LINGER_MS,
        // The app's clients are watched where they are made (REDIS_REPLY_TIMEOUT_MS): no second watchdog.
        replyTimeoutMs: 0,
      },
    }),
  });
}

/** The buffered collections; their settings come from the root options above. */
export const COUNTERS_BUFFERS: BufferedCollection[] = [{ collection: COUNTERS_COLLECTION }];
