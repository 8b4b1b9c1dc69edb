import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JobsOptions, Queue } from 'bullmq';
import { bullmqConnection } from '@bufferq/datastores';
import { ClaimedTimer } from './due-index/due-index';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';

export const TIMER_DELIVERY_QUEUE = 'delivery';

/** The job of one delivery batch: up to TIMERS_DELIVERY_BATCH claimed timers. */
export interface TimerDeliveryJob {
  timers: ClaimedTimer[];
}

// The queue carries claimed timers to whichever worker is free; it is not what keeps a timer from being
// lost or sent twice: the lease in the due index is (see DeliveryLeases). So a job runs once: a job that
// throws or stalls (its worker died) is dropped, and its timers' leases lapse and they are claimed again.
const DELIVERY_JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: true,
  removeOnFail: { age: 24 * 3600, count: 1_000 },
};

@Injectable()
export class TimerDeliveryQueue implements OnModuleDestroy {
  readonly queue: Queue<TimerDeliveryJob>;

  constructor(
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
    env: ConfigService,
  ) {
    this.queue = new Queue<TimerDeliveryJob>(TIMER_DELIVERY_QUEUE, {
      connection: bullmqConnection(env.getOrThrow<string>('REDIS_URL')),
      prefix: config.TIMERS_REDIS_PREFIX,
    });
  }

  /** Adds the timers as jobs of up to TIMERS_DELIVERY_BATCH timers each. */
  async enqueue(timers: ClaimedTimer[]): Promise<void> {
    const size = this.config.TIMERS_DELIVERY_BATCH;
    const jobs = [];
    for (let i = 0; i < timers.length; i += size)
      jobs.push({
        name: 'deliver',
        data: { timers: timers.slice(i, i + size) },
        opts: DELIVERY_JOB_OPTIONS,
      });
    if (jobs.length) await this.queue.addBulk(jobs);
  }

  /** Batches waiting for a worker. */
  waitingBatches(): Promise<number> {
    return this.queue.getWaitingCount();
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }
}
