import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { Queue } from 'bullmq';
import { CapabilityHealth, HealthCheckFailed } from '@bufferq/operations';
import { ROYALTIES_BUILD_QUEUE } from './royalties-build-queue';

/** How long a build may wait while none runs before the `royalties` check is down: no worker takes builds. */
export const MAX_UNSTARTED_BUILD_WAIT_MS = 60_000;

/** The `royalties` check: the build queue answers, and builds that wait are being taken by a worker. */
@Injectable()
export class RoyaltiesBuildHealth extends CapabilityHealth {
  readonly check = 'royalties';

  constructor(@InjectQueue(ROYALTIES_BUILD_QUEUE) private readonly queue: Queue) {
    super();
  }

  async probe(): Promise<Record<string, unknown>> {
    const { waiting = 0, active = 0, failed = 0 } = await this.queue.getJobCounts('waiting', 'active', 'failed');
    const [oldest] = waiting > 0 && active === 0 ? await this.queue.getJobs(['waiting'], 0, 0, true) : [];
    const oldestWaitMs = oldest ? Date.now() - oldest.timestamp : 0;
    const details = { waiting, active, failed, oldestWaitMs };
    if (oldestWaitMs > MAX_UNSTARTED_BUILD_WAIT_MS)
      throw new HealthCheckFailed('builds wait and no worker runs them', details);
    return details;
  }
}
