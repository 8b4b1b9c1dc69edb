import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JobsOptions, Queue } from 'bullmq';
import { bullmqConnection } from '@bufferq/datastores';
import { DueTimer } from '../scheduling/due-index';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';

export const TIMER_DELIVERY_QUEUE = 'delivery';

/** The job of one delivery attempt: which timer, and which attempt (its scheduled time in ms). */
export interface TimerDeliveryJob {
  id: string;
  runAt: number;
}

// The queue holds only timers that are due now (the due index holds the rest), so finished jobs are
// dropped at once; MongoDB keeps each timer's outcome. A job that throws (MongoDB unreachable) is tried
// again by BullMQ; one that still fails is re-added later by the reconciler.
const DELIVERY_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: true,
  removeOnFail: { age: 24 * 3600, count: 10_000 },
};

/** `<id>-<runAt>`: duplicates of one attempt collapse into one job; a retry is a new job. */
export function deliveryJobId(timer: DueTimer): string {
  return `${timer.id}-${timer.runAt}`;
}

@Injectable()
export class TimerDeliveryQueue implements OnModuleDestroy {
  readonly queue: Queue<TimerDeliveryJob>;

  constructor(@Inject(TIMERS_CONFIG) config: TimersConfig, env: ConfigService) {
    this.queue = new Queue<TimerDeliveryJob>(TIMER_DELIVERY_QUEUE, {
      connection: bullmqConnection(env.getOrThrow<string>('REDIS_URL')),
      prefix: config.TIMERS_REDIS_PREFIX,
    });
  }

  async enqueue(timers: DueTimer[]): Promise<void> {
    if (!timers.length) return;
    await this.queue.addBulk(
      timers.map((timer) => ({
        name: 'deliver',
        data: { id: timer.id, runAt: timer.runAt },
        opts: { ...DELIVERY_JOB_OPTIONS, jobId: deliveryJobId(timer) },
      })),
    );
  }

  async onModuleDestroy(): Promise<void> {
    await this.queue.close();
  }
}
