import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import type { Job } from 'bullmq';
import { CapabilityMetrics } from '@bufferq/operations';
import type { BuildProgress } from '../consolidation/consolidation';
import { RoyaltiesBuildProcessor } from './royalties-build.processor';
import type { BuildOutcome } from './run-royalties-build';

const BUILD_OUTCOMES: Array<BuildOutcome | 'failed'> = ['succeeded', 'cancelled', 'already finished', 'failed'];

/** Builds this worker ran: how many by outcome, how long each took, and how many input lines a second. */
@Injectable()
export class RoyaltiesBuildMetrics extends CapabilityMetrics implements OnApplicationBootstrap {
  private readonly builds = this.counter({
    name: 'royalties_builds_total',
    help: 'Royalties build jobs this worker finished, by outcome (succeeded, cancelled, already finished, failed)',
    labelNames: ['outcome'],
  });
  private readonly duration = this.histogram({
    name: 'royalties_build_duration_seconds',
    help: 'Duration of royalties build jobs, by outcome',
    labelNames: ['outcome'],
    buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
  });
  private readonly linesPerSecond = this.histogram({
    name: 'royalties_build_lines_per_second',
    help: 'Input lines (users and streams) read per second by each succeeded build',
    buckets: [1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2e6, 5e6],
  });

  constructor(private readonly processor: RoyaltiesBuildProcessor) {
    super();
    // Every series exists from the start, so rates and alerts see a 0, not an absent series.
    for (const outcome of BUILD_OUTCOMES) {
      this.builds.inc({ outcome }, 0);
      this.duration.zero({ outcome });
    }
  }

  /** The processor's BullMQ worker exists once the modules are initialised. */
  onApplicationBootstrap(): void {
    this.processor.worker.on('completed', (job: Job, outcome: string) => this.finished(job, outcome));
    this.processor.worker.on('failed', (job: Job | undefined) => {
      if (job) this.finished(job, 'failed');
    });
  }

  private finished(job: Job, outcome: string): void {
    this.builds.inc({ outcome });
    if (!job.processedOn) return;
    const seconds = Math.max(0.001, ((job.finishedOn ?? Date.now()) - job.processedOn) / 1000);
    this.duration.observe({ outcome }, seconds);
    const lines = (job.progress as Partial<BuildProgress> | undefined)?.rowsRead;
    if (outcome === 'succeeded' && typeof lines === 'number') this.linesPerSecond.observe(lines / seconds);
  }
}
