import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger, OnApplicationBootstrap, Type } from '@nestjs/common';
import { Job } from 'bullmq';
import type { BufferedMongoIncrements, FlushReport } from './buffered-mongo-increments';
import { BUFFERED_INCREMENTS_FLUSHERS, FLUSH_QUEUE, FlushJobData } from './buffered-increments.constants';
import type { ResolvedCollection } from './buffered-increments.options';
import { FLUSH_SCHEDULE_COLLECTIONS, flushConcurrency } from './flush-schedule';

/**
 * Runs `flush` jobs. Thin on purpose: validate the job, hand it to the collection's buffer. A failed
 * flush fails the job (BullMQ retries it; the buffer keeps everything in Redis meanwhile).
 */
export class FlushProcessor extends WorkerHost implements OnApplicationBootstrap {
  private readonly logger = new Logger(FlushProcessor.name);

  constructor(
    @Inject(BUFFERED_INCREMENTS_FLUSHERS) private readonly flushers: Map<string, BufferedMongoIncrements>,
    @Inject(FLUSH_SCHEDULE_COLLECTIONS) private readonly collections: ResolvedCollection[],
  ) {
    super();
  }

  /** One flush per shard may run in this process; shard counts are known once forRoot's options are. */
  onApplicationBootstrap(): void {
    this.worker.concurrency = flushConcurrency(this.collections);
  }

  /**
   * A connection error of the worker (Redis restarting, a Cluster failover moving the queue's slot): BullMQ
   * reconnects by itself. Without a listener Node would throw the 'error' event inside BullMQ's loop.
   */
  @OnWorkerEvent('error')
  onWorkerError(error: Error): void {
    this.logger.warn(`flush worker: ${error.message}`);
  }

  async process(job: Job<FlushJobData>): Promise<FlushReport> {
    const buffer = job.data?.buffer ?? job.data?.collection;
    const flusher = this.flushers.get(buffer);
    if (!flusher) throw new Error(`flush job for unknown buffer '${buffer}'`);
    const report = await flusher.flush({ shard: job.data?.shard }).catch((error: unknown) => {
      // Told to the buffer's listeners (metrics) as a standalone buffer's failed flush is.
      flusher.emit('flushError', error);
      throw error;
    });
    if (report.deadLetters > 0) this.logger.warn(`${buffer}: ${report.deadLetters} updates set aside as dead letters`);
    return report;
  }
}

/**
 * The processor `forWorker` registers, with its job lock. A live worker renews the lock every half
 * period, so a flush may take longer than the lock. A worker that dies mid-flush holds the queue (one
 * flush at a time) until its lock lapses and the stalled-job check, run at the same period, hands the
 * job to another replica: the lock bounds how long flushes stop after a crash.
 */
export function flushProcessorWithLock(jobLockMs: number): Type<FlushProcessor> {
  @Processor(FLUSH_QUEUE, { lockDuration: jobLockMs, stalledInterval: jobLockMs })
  class LockedFlushProcessor extends FlushProcessor {}
  return LockedFlushProcessor;
}
