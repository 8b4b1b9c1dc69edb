import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import { bullmqConnection } from '@bufferq/datastores';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { DeliveryClock } from './delivery-clock';
import { TIMER_DELIVERY_QUEUE, TimerDeliveryJob } from '../storage/timer-delivery-queue';
import { BatchResult, TimerDeliveryService } from './timer-delivery.service';

/** Consumes the delivery queue; it checks the job's shape and hands the batch to TimerDeliveryService. */
@Injectable()
export class TimerDeliveryProcessor implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TimerDeliveryProcessor.name);
  private worker?: Worker<TimerDeliveryJob, BatchResult>;

  constructor(
    private readonly delivery: TimerDeliveryService,
    private readonly clock: DeliveryClock,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
    private readonly env: ConfigService,
  ) {}

  onApplicationBootstrap(): void {
    this.worker = new Worker<TimerDeliveryJob, BatchResult>(TIMER_DELIVERY_QUEUE, (job) => this.process(job), {
      connection: bullmqConnection(this.env.getOrThrow<string>('REDIS_URL')),
      prefix: this.config.TIMERS_REDIS_PREFIX,
      concurrency: deliveryJobConcurrency(this.config),
      lockDuration: this.config.TIMERS_DELIVERY_LOCK_MS,
      stalledInterval: this.config.TIMERS_DELIVERY_LOCK_MS,
      // A batch whose worker died is not run again by BullMQ: its timers' leases lapse and schedulers
      // claim them again, so a timer is re-sent once, not once per mechanism.
      maxStalledCount: 0,
    });
    this.worker.on('failed', (job, error) => this.logger.warn(`delivery batch ${job?.id} failed: ${error.message}`));
    this.worker.on('error', (error) => this.logger.error(`delivery worker: ${error.message}`));
  }

  process(job: Job<TimerDeliveryJob>): Promise<BatchResult> {
    const timers = job.data?.timers;
    if (
      !Array.isArray(timers) ||
      !timers.every(
        (timer) =>
          typeof timer?.id === 'string' &&
          typeof timer.claim === 'string' &&
          (timer.runAt === undefined || Number.isFinite(timer.runAt)),
      )
    )
      throw new UnrecoverableError(`malformed delivery batch ${job.id}`);
    return this.delivery.deliverBatch(timers);
  }

  /**
   * Lets the batches in flight finish sending (armed timers at their run times, at most the lookahead
   * away) before DeliveryOutcomes records the rest.
   */
  async onModuleDestroy(): Promise<void> {
    this.clock.close();
    await this.worker?.close();
  }
}

/**
 * Batches a worker runs at once: enough to keep TIMERS_DELIVERY_CONCURRENCY requests in flight
 * (WebhookSender caps them), one more so a batch waiting on a slow host does not idle the others, and,
 * when timers are claimed ahead, enough to hold the TIMERS_SCHEDULER_BATCH armed timers waiting for
 * their run time.
 */
export function deliveryJobConcurrency(config: TimersConfig): number {
  const batches = (timers: number) => Math.ceil(timers / config.TIMERS_DELIVERY_BATCH);
  return (
    batches(config.TIMERS_DELIVERY_CONCURRENCY) +
    1 +
    (config.TIMERS_SCHEDULER_LOOKAHEAD_MS > 0 ? batches(config.TIMERS_SCHEDULER_BATCH) : 0)
  );
}
