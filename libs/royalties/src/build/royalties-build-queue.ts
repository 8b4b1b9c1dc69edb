import { BullModule } from '@nestjs/bullmq';
import type { JobsOptions } from 'bullmq';
import { hashTaggedQueueName } from '@bufferq/datastores';
import { ROYALTIES_CONFIG, RoyaltiesConfig, RoyaltiesConfigModule } from '../royalties.config';

/**
 * The queue of builds: the api adds a `build` job per build, the `royalties` worker role runs them.
 * Registered under this name (`@InjectQueue`); BullMQ's queue is ROYALTIES_QUEUE (whose default this is, so
 * deployments and tests can keep their builds apart on one Redis) in hash-tag braces.
 */
export const ROYALTIES_BUILD_QUEUE = 'royalties-builds';
export const BUILD_JOB = 'build';

export interface BuildJobData {
  buildId: string;
}

/**
 * One retry after an unexpected error (a database hiccup; input problems fail for good), and the last
 * hundred finished builds kept for the dashboard.
 */
export const BUILD_JOB_OPTIONS = {
  attempts: 2,
  backoff: { type: 'exponential', delay: 5_000 },
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 100 },
} satisfies JobsOptions;

/**
 * The build queue's registration, in the api (which adds builds) and in the worker (whose processor runs
 * them), on the connection of the app's `BullModule.forRoot`.
 */
export const RoyaltiesBuildQueueModule = BullModule.registerQueueAsync({
  name: ROYALTIES_BUILD_QUEUE,
  imports: [RoyaltiesConfigModule],
  inject: [ROYALTIES_CONFIG],
  useFactory: (config: RoyaltiesConfig) => ({ name: hashTaggedQueueName(config.ROYALTIES_QUEUE) }),
});
