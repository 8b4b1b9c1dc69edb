import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Job, Worker } from 'bullmq';
import { bullmqConnection } from '@bufferq/datastores';
import type { RoyaltiesSettings } from '../royalties.env';
import { BuildJobData, ROYALTIES_SETTINGS } from '../royalties.tokens';
import { BuildOutcome, RunRoyaltiesBuild } from './run-royalties-build';

/**
 * The `royalties` worker role: one build at a time per replica (a build saturates a core). The
 * processor only hands the job to the use case; progress goes to the job (Bull Board) and the build.
 */
@Injectable()
export class RoyaltiesBuildWorker implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RoyaltiesBuildWorker.name);
  private worker?: Worker<BuildJobData, BuildOutcome>;

  constructor(
    @Inject(ROYALTIES_SETTINGS) private readonly settings: RoyaltiesSettings,
    private readonly runBuild: RunRoyaltiesBuild,
    private readonly config: ConfigService,
  ) {}

  onModuleInit(): void {
    this.worker = new Worker<BuildJobData, BuildOutcome>(
      this.settings.queueName,
      (job: Job<BuildJobData, BuildOutcome>) =>
        this.runBuild.execute(
          job.data.buildId,
          (progress) => job.updateProgress({ ...progress }),
          job.attemptsMade + 1 < (job.opts.attempts ?? 1),
        ),
      { connection: bullmqConnection(this.config.getOrThrow<string>('REDIS_URL')), concurrency: 1 },
    );
    this.worker.on('failed', (job, error) => this.logger.warn(`royalties build ${job?.id} failed: ${error.message}`));
    this.worker.on('error', (error) => this.logger.error(`royalties worker: ${error.message}`));
  }

  /** Waits for the running build to finish before the database connections close. */
  async onModuleDestroy(): Promise<void> {
    await this.worker?.close();
  }
}
