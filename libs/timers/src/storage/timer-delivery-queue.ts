import { BullModule, InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import { JobsOptions, Queue } from 'bullmq';
import { hashTaggedQueueName } from '@bufferq/datastores';
import { ClaimedTimer } from './due-index/due-index';
import { TIMERS_CONFIG, TimersConfig, TimersConfigModule } from '../timers.config';

/**
 * The delivery queue: claimed timers on their way to a worker that sends them. Registered under this name
 * (`@InjectQueue`); BullMQ's queue is `<TIMERS_REDIS_PREFIX>-delivery` in hash-tag braces
 * (`timerDeliveryQueueName`), under the app-wide BullMQ prefix.
 */
export const TIMER_DELIVERY_QUEUE = 'timers-delivery';
export const TIMER_DELIVERY_JOB = 'deliver';

/** The job of one delivery batch: up to TIMERS_DELIVERY_BATCH claimed timers. */
export interface TimerDeliveryJob {
  timers: ClaimedTimer[];
}

// The queue carries claimed timers to whichever worker is free; it is not what keeps a timer from being
// lost or sent twice: the lease in the due index is (see DeliveryLeases). So a job runs once: a job that
// throws or stalls (its worker died) is dropped, and its timers' leases lapse and they are claimed again.
// Finished batches are not kept; failed ones for a day (at most 1,000), for the dashboard.
export const TIMER_DELIVERY_JOB_OPTIONS: JobsOptions = {
  attempts: 1,
  removeOnComplete: true,
  removeOnFail: { age: 24 * 3600, count: 1_000 },
};

/**
 * BullMQ's name of the delivery queue: derived from TIMERS_REDIS_PREFIX, so deployments and tests sharing a
 * Redis keep apart, and hash-tagged, so it runs on a Redis Cluster.
 */
export function timerDeliveryQueueName(config: Pick<TimersConfig, 'TIMERS_REDIS_PREFIX'>): string {
  return hashTaggedQueueName(`${config.TIMERS_REDIS_PREFIX}-delivery`);
}

/** The delivery queue's registration, on the connection and prefix of the app's `BullModule.forRoot`. */
export const TimerDeliveryQueueModule = BullModule.registerQueueAsync({
  name: TIMER_DELIVERY_QUEUE,
  imports: [TimersConfigModule],
  inject: [TIMERS_CONFIG],
  useFactory: (config: TimersConfig) => ({ name: timerDeliveryQueueName(config) }),
});

/** Adds claimed timers to the delivery queue in batches. */
@Injectable()
export class TimerDeliveryQueue {
  constructor(
    @InjectQueue(TIMER_DELIVERY_QUEUE) readonly queue: Queue<TimerDeliveryJob>,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {}

  /** Adds the timers as jobs of up to TIMERS_DELIVERY_BATCH timers each. */
  async enqueue(timers: ClaimedTimer[]): Promise<void> {
    const size = this.config.TIMERS_DELIVERY_BATCH;
    const jobs = [];
    for (let i = 0; i < timers.length; i += size)
      jobs.push({
        name: TIMER_DELIVERY_JOB,
        data: { timers: timers.slice(i, i + size) },
        opts: TIMER_DELIVERY_JOB_OPTIONS,
      });
    if (jobs.length) await this.queue.addBulk(jobs);
  }

  /** Batches waiting for a worker. */
  waitingBatches(): Promise<number> {
    return this.queue.getWaitingCount();
  }
}
