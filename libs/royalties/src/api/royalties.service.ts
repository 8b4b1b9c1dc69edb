import {
  BadGatewayException,
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
  NotFoundException,
} from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import { Queue } from 'bullmq';
import { ObjectId } from 'mongodb';
import { InputChangedError, readConsolidatedPage, ConsolidatedPage } from '../storage/consolidated-entries';
import { BuildInputError, InputRefusedError, InputUnavailableError } from '../inputs/input-errors';
import type { BuildInputs } from '../consolidation/consolidation';
import { isUrlLocation, locationRefusal, realLocalPath, resolveLocation } from '../inputs/input-policy';
import { centsToNumber } from '../consolidation/money';
import { BuildDocument, RoyaltiesRepository } from '../storage/royalties.repository';
import { BUILD_JOB, BUILD_JOB_OPTIONS, BuildJobData, ROYALTIES_BUILD_QUEUE } from '../build/royalties-build-queue';
import type { InputPolicy } from '../inputs/input-policy';
import { defaultInputsOf, ROYALTIES_CONFIG, ROYALTIES_INPUT_POLICY, RoyaltiesConfig } from '../royalties.config';

/** What the api does for royalties: start, watch and cancel builds, and read the latest results. */
@Injectable()
export class RoyaltiesService {
  constructor(
    @Inject(ROYALTIES_CONFIG) private readonly config: RoyaltiesConfig,
    @Inject(ROYALTIES_INPUT_POLICY) private readonly inputPolicy: InputPolicy,
    @InjectQueue(ROYALTIES_BUILD_QUEUE) private readonly queue: Queue<BuildJobData>,
    private readonly repository: RoyaltiesRepository,
  ) {}

  async startBuild(requested: Partial<BuildInputs>): Promise<{ buildId: string }> {
    const defaults = defaultInputsOf(this.config);
    const inputs = {
      usersCsv: requested.usersCsv ?? defaults.usersCsv,
      streamsCsv: requested.streamsCsv ?? defaults.streamsCsv,
      tracks: requested.tracks ?? defaults.tracks,
    };
    const missing = Object.entries(inputs)
      .filter(([, value]) => !value)
      .map(([name]) => name);
    if (missing.length)
      throw new BadRequestException(
        `missing ${missing.join(', ')}: give them in the body or configure ROYALTIES_USERS_CSV / ROYALTIES_STREAMS_CSV / ROYALTIES_TRACKS`,
      );
    await this.refuseForbiddenInputs(inputs as BuildInputs);
    const root = this.inputPolicy.root;
    const resolved: BuildInputs = {
      usersCsv: resolveLocation(inputs.usersCsv!, root),
      streamsCsv: resolveLocation(inputs.streamsCsv!, root),
      tracks: resolveLocation(inputs.tracks!, root),
    };
    const buildId = new ObjectId().toHexString();
    await this.repository.createBuild(buildId, resolved);
    // The job id is the build id: a duplicate add is a no-op and Bull Board shows the same id.
    await this.queue.add(BUILD_JOB, { buildId }, { jobId: buildId, ...BUILD_JOB_OPTIONS });
    return { buildId };
  }

  /**
   * 400 for inputs the policy refuses, grouped by reason. What needs no network is checked here, local
   * symlinks included; a URL's host name is checked by the worker when it connects.
   */
  private async refuseForbiddenInputs(inputs: BuildInputs): Promise<void> {
    const policy = this.inputPolicy;
    const refused = new Map<string, string[]>();
    for (const [name, location] of Object.entries(inputs)) {
      let reason = locationRefusal(location, policy);
      if (!reason && !isUrlLocation(location)) {
        // A file that cannot be resolved (missing) is the worker's to report, with the build.
        const real = await realLocalPath(location, policy).catch(() => null);
        if (real && 'refused' in real) reason = real.refused;
      }
      if (reason) refused.set(reason, [...(refused.get(reason) ?? []), name]);
    }
    if (refused.size)
      throw new BadRequestException([...refused].map(([reason, names]) => `${names.join(', ')}: ${reason}`).join('; '));
  }

  async buildStatus(buildId: string) {
    const build = await this.repository.findBuild(buildId);
    if (!build) throw new NotFoundException(`no royalties build ${buildId}`);
    const { _id, result, ...rest } = build;
    const cancelRequested = build.cancelRequested ?? (await this.repository.isCancelRequested(buildId));
    return {
      buildId: _id,
      ...rest,
      cancelRequested,
      ...(result
        ? {
            counts: result.counts,
            problems: result.problems,
            problemCount: result.problemCount,
            totalRevenue: centsToNumber(result.revenue.totalCents),
          }
        : {}),
    };
  }

  /** Cancels a queued build at once; a running one stops at its next chunk (the status says when). */
  async cancelBuild(buildId: string): Promise<{ buildId: string; status: string }> {
    if (!(await this.repository.requestCancel(buildId))) {
      const build = await this.repository.findBuild(buildId);
      if (!build) throw new NotFoundException(`no royalties build ${buildId}`);
      throw new ConflictException(`royalties build ${buildId} already ${build.status}`);
    }
    const job = await this.queue.getJob(buildId);
    const state = await job?.getState();
    if (job && (state === 'waiting' || state === 'delayed' || state === 'prioritized')) {
      // Removing fails when a worker took the job meanwhile; that worker sees the flag instead.
      const removed = await job.remove().then(
        () => true,
        () => false,
      );
      if (removed) await this.repository.markFinished(buildId, 'cancelled');
    }
    const build = await this.repository.findBuild(buildId);
    return { buildId, status: build?.status ?? 'cancelled' };
  }

  async report(buildId?: string): Promise<Record<string, number>> {
    const build = await this.succeededBuild(buildId);
    return Object.fromEntries(
      build.result!.labels.map(({ label, payoutCents }) => [label, centsToNumber(payoutCents)]),
    );
  }

  async revenue(buildId?: string) {
    const build = await this.succeededBuild(buildId);
    const { revenue, unallocatedCents, labels } = build.result!;
    const origin = (name: 'app_store' | 'web') => ({
      users: revenue.byOrigin[name].users,
      fees: centsToNumber(revenue.byOrigin[name].feesCents),
      revenueExact: revenue.byOrigin[name].revenueExact,
    });
    return {
      buildId: build._id,
      total: centsToNumber(revenue.totalCents),
      totalExact: revenue.totalExact,
      paidToLabels: centsToNumber(labels.reduce((sum, label) => sum + label.payoutCents, 0)),
      unallocated: centsToNumber(unallocatedCents),
      byOrigin: { app_store: origin('app_store'), web: origin('web') },
    };
  }

  async user(userId: string, buildId?: string): Promise<{ User: string; 'Total Streamed': number }> {
    const build = await this.succeededBuild(buildId);
    const user = await this.repository.findUser(build, userId);
    if (!user)
      throw new NotFoundException(
        `user ${userId} is neither in the users file nor in the streams of build ${build._id}`,
      );
    return { User: userId, 'Total Streamed': user.seconds };
  }

  async users(query: { buildId?: string; after?: string; limit: number }) {
    const build = await this.succeededBuild(query.buildId);
    const { rows, more } = await this.repository.listUsers(build, query.after, query.limit);
    return {
      buildId: build._id,
      items: rows.map((user) => ({ User: user.userId, 'Total Streamed': user.seconds, listed: user.listed })),
      next: more ? rows[rows.length - 1].userId : null,
    };
  }

  async consolidated(query: {
    buildId?: string;
    cursor?: string;
    limit: number;
  }): Promise<ConsolidatedPage & { buildId: string }> {
    const build = await this.succeededBuild(query.buildId);
    try {
      return {
        buildId: build._id,
        ...(await readConsolidatedPage(this.repository, build, query.cursor, query.limit, this.inputPolicy)),
      };
    } catch (error) {
      if (error instanceof RangeError) throw new BadRequestException(error.message);
      if (error instanceof InputChangedError) throw new ConflictException(error.message);
      // The streams input cannot be read now, or no longer may be: the page's source failed, not the request.
      if (
        error instanceof InputUnavailableError ||
        error instanceof InputRefusedError ||
        error instanceof BuildInputError
      )
        throw new BadGatewayException(error.message);
      throw error;
    }
  }

  private async succeededBuild(buildId?: string): Promise<BuildDocument> {
    const build = buildId ? await this.repository.findBuild(buildId) : await this.repository.latestSucceeded();
    if (!build || build.status !== 'succeeded' || !build.result) {
      throw new NotFoundException(
        buildId ? `royalties build ${buildId} has no results (not succeeded)` : 'no royalties build has succeeded yet',
      );
    }
    return build;
  }
}
