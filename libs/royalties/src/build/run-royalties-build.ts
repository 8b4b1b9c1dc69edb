import { Provider } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import { BuildCancelledError } from '../consolidation/build-cancelled-error';
import { BuildInputError, InputRefusedError, InputUnavailableError } from '../inputs/input-errors';
import { consolidateRoyalties } from '../consolidation/consolidate-royalties';
import type { BuildProgress, ConsolidationOptions } from '../consolidation/consolidation';
import type { InputPolicy } from '../inputs/input-policy';
import { ROYALTIES_CONFIG, ROYALTIES_INPUT_POLICY, RoyaltiesConfig } from '../royalties.config';
import { RoyaltiesRepository } from '../storage/royalties.repository';

export type BuildOutcome = 'succeeded' | 'cancelled' | 'already finished';

/**
 * The use case behind the build job: consolidate the build's inputs and persist the results, keeping the
 * build document's status, progress and error in step. Input problems fail the job for good (a retry
 * would read the same bad file); anything else (a database hiccup) fails it so BullMQ may retry.
 */
export class RunRoyaltiesBuild {
  constructor(
    private readonly repository: RoyaltiesRepository,
    private readonly options: Pick<
      ConsolidationOptions,
      'maxBadLineShare' | 'checkIntervalMs' | 'streamThreads' | 'minBytesPerThread'
    > &
      Required<Pick<ConsolidationOptions, 'inputPolicy'>>,
  ) {}

  /**
   * `retriesLeft`: whether the queue will run this build again after an unexpected error; then the build
   * goes back to `queued` (with the error) instead of `failed`, so the retry is not taken for finished.
   */
  async execute(
    buildId: string,
    reportProgress: (progress: BuildProgress) => Promise<void> = async () => undefined,
    retriesLeft = false,
  ): Promise<BuildOutcome> {
    const build = await this.repository.findBuild(buildId);
    if (!build) throw new UnrecoverableError(`royalties build ${buildId} does not exist`);
    if (build.status === 'succeeded' || build.status === 'failed' || build.status === 'cancelled')
      return 'already finished';
    if (await this.repository.isCancelRequested(buildId)) {
      await this.repository.markFinished(buildId, 'cancelled');
      return 'cancelled';
    }
    await this.repository.markRunning(buildId);
    const progress = async (value: BuildProgress) => {
      await Promise.all([reportProgress(value), this.repository.saveProgress(buildId, value)]);
    };
    try {
      const consolidation = await consolidateRoyalties(build.inputs, {
        maxBadLineShare: this.options.maxBadLineShare,
        checkIntervalMs: this.options.checkIntervalMs,
        streamThreads: this.options.streamThreads,
        minBytesPerThread: this.options.minBytesPerThread,
        inputPolicy: this.options.inputPolicy,
        isCancelled: () => this.repository.isCancelRequested(buildId),
        onProgress: progress,
      });
      const users = consolidation.ledger.size;
      const persisting = (written: number): BuildProgress => ({
        phase: 'persisting',
        rowsRead: consolidation.counts.users.lines + consolidation.counts.streams.lines,
        bytesRead: written,
        bytesTotal: users,
        percent: users ? Math.round((written / users) * 1000) / 10 : 100,
      });
      await progress(persisting(0));
      await this.repository.saveConsolidation(buildId, consolidation, async (written) => {
        if (await this.repository.isCancelRequested(buildId)) throw new BuildCancelledError();
        await progress(persisting(written));
      });
      await this.repository.purgeOtherBuilds(buildId);
      return 'succeeded';
    } catch (error) {
      if (error instanceof BuildCancelledError) {
        await this.repository.markFinished(buildId, 'cancelled');
        return 'cancelled';
      }
      const message = (error as Error).message;
      const permanent =
        error instanceof BuildInputError ||
        error instanceof InputUnavailableError ||
        error instanceof InputRefusedError;
      if (permanent || !retriesLeft)
        await this.repository.markFinished(buildId, 'failed', message).catch(() => undefined);
      else await this.repository.markRetrying(buildId, message).catch(() => undefined);
      if (permanent) throw new UnrecoverableError(message);
      throw error;
    }
  }
}

/** The use case with the deployment's settings (ROYALTIES_MAX_BAD_LINE_SHARE, ROYALTIES_STREAM_THREADS, the input policy). */
export const runRoyaltiesBuildProvider: Provider = {
  provide: RunRoyaltiesBuild,
  inject: [RoyaltiesRepository, ROYALTIES_CONFIG, ROYALTIES_INPUT_POLICY],
  useFactory: (repository: RoyaltiesRepository, config: RoyaltiesConfig, inputPolicy: InputPolicy) =>
    new RunRoyaltiesBuild(repository, {
      maxBadLineShare: config.ROYALTIES_MAX_BAD_LINE_SHARE,
      streamThreads: config.ROYALTIES_STREAM_THREADS,
      inputPolicy,
    }),
};
