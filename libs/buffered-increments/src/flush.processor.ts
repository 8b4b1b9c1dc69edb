import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger } from '@nestjs/common';
import { Job } from 'bullmq';
import type { BufferedMongoIncrements, FlushReport } from './buffered-mongo-increments';
import { BUFFERED_INCREMENTS_FLUSHERS, FLUSH_JOB_LOCK_MS, FLUSH_QUEUE, FlushJobData } from './buffered-increments.constants';

/**
 * Runs `flush` jobs. Thin on purpose: validate the job, hand it to the collection's buffer. A failed
 * flush fails the job (BullMQ retries it; the buffer keeps everything in Redis meanwhile).
 */
@Processor(FLUSH_QUEUE, { concurrency: 1, lockDuration: FLUSH_JOB_LOCK_MS })
export class FlushProcessor extends WorkerHost {
  private readonly logger = new Logger(FlushProcessor.name);

  constructor(@Inject(BUFFERED_INCREMENTS_FLUSHERS) private readonly flushers: Map<string, BufferedMongoIncrements>) {
    super();
  }

  async process(job: Job<FlushJobData>): Promise<FlushReport> {
    const flusher = this.flushers.get(job.data?.collection);
    if (!flusher) throw new Error(`flush job for unknown collection '${job.data?.collection}'`);
    const report = await flusher.flush();
    if (report.deadLetters > 0) this.logger.warn(`${job.data.collection}: ${report.deadLetters} updates set aside as dead letters`);
    return report;
  }
}
