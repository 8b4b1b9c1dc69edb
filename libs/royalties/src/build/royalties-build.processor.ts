import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnModuleDestroy, Provider, Type } from '@nestjs/common';
import { Job, UnrecoverableError } from 'bullmq';
import { ROYALTIES_CONFIG, RoyaltiesConfig } from '../royalties.config';
import type { BuildJobData } from './royalties-build-queue';
import { BuildOutcome, RunRoyaltiesBuild } from './run-royalties-build';
import { hashTaggedQueueName } from '@bufferq/datastores';

/**
 * Runs `build` jobs. Thin on purpose: validate the job, hand it to RunRoyaltiesBuild; progress goes to
 * the job (Bull Board) and the build. A build whose job will be retried goes back to `queued`.
 */
export class RoyaltiesBuildProcessor extends WorkerHost implements OnModuleDestroy {
  private readonly logger = new Logger(RoyaltiesBuildProcessor.name);

  constructor(private readonly runBuild: RunRoyaltiesBuild) {
    super();
  }

  async process(job: Job<BuildJobData, BuildOutcome>): Promise<BuildOutcome> {
    const buildId = job.data?.buildId;
    if (typeof buildId !== 'string') throw new UnrecoverableError(`malformed royalties build job ${job.id}`);
    return this.runBuild.execute(
      buildId,
      (progress) => job.updateProgress({ ...progress }),
      job.attemptsMade + 1 < (job.opts.attempts ?? 1),
    );
  }

  @OnWorkerEvent('failed')
  onFailed(job: Job | undefined, error: Error): void {
    this.logger.warn(`royalties build ${job?.id} failed: ${error.message}`);
  }

  @OnWorkerEvent('error')
  onError(error: Error): void {
    this.logger.error(`royalties worker: ${error.message}`);
  }

  /** Waits for the running build to finish before the database connections close (at application shutdown). */
  async onModuleDestroy(): Promise<void> {
    await this.worker.close();
  }
}

/**
 * The processor on the queue named `queueName`, one build at a time per replica (a build saturates a
 * core). The name comes from ROYALTIES_QUEUE, known once the config is read, so the class is made then.
 */
function royaltiesBuildProcessorOn(queueName: string): Type<RoyaltiesBuildProcessor> {
  @Processor(queueName, { concurrency: 1 })
  class RoyaltiesBuildQueueProcessor extends RoyaltiesBuildProcessor {}
  return RoyaltiesBuildQueueProcessor;
}

export const royaltiesBuildProcessorProvider: Provider = {
  provide: RoyaltiesBuildProcessor,
  inject: [RunRoyaltiesBuild, ROYALTIES_CONFIG],
  useFactory: (runBuild: RunRoyaltiesBuild, config: RoyaltiesConfig) =>
    new (royaltiesBuildProcessorOn(hashTaggedQueueName(config.ROYALTIES_QUEUE)))(runBuild),
};
