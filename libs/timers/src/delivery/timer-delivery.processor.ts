import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger, OnApplicationBootstrap, OnModuleDestroy, Provider, Type } from '@nestjs/common';
import { Job, UnrecoverableError, WorkerOptions } from 'bullmq';
import { TimerDeliveryJob, timerDeliveryQueueName } from '../storage/timer-delivery-queue';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { DeliveryClock } from './delivery-clock';
import { BatchResult, TimerDeliveryService } from './timer-delivery.service';

/**
 * Runs delivery batches. Thin on purpose: check the job's shape, hand the batch to TimerDeliveryService.
 * Its worker starts once the application has bootstrapped (the scheduler starts then too).
 */
export class TimerDeliveryProcessor extends WorkerHost implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TimerDeliveryProcessor.name);

  constructor(
    private readonly delivery: TimerDeliveryService,
    private readonly clock: DeliveryClock,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.run().catch((error: Error) => this.logger.error(`delivery worker stopped: ${error.message}`));
  }

  process(job: Job<TimerDeliveryJob>): Promise<BatchResult> {
    const timers = job.data?.timers;
    if (
      !Array.isArray(timers) ||
      !timers.every(
        (timer) =>
          typeof timer?.id === 'string' &&
          typeof timer.claim === 'string' &&
          (timer.runAt === undefined || Number.isFinite(timer.runAt)) &&
          (timer.dueAt === undefined || Number.isFinite(timer.dueAt)),
      )
    )
      throw new UnrecoverableError(`malformed delivery batch ${job.id}`);
    return this.delivery.deliverBatch(timers);
  }

  @OnWorkerEvent('failed')
  onFailed(job: Job | undefined, error: Error): void {
    this.logger.warn(`delivery batch ${job?.id} failed: ${error.message}`);
  }

  @OnWorkerEvent('error')
  onError(error: Error): void {
    this.logger.error(`delivery worker: ${error.message}`);
  }

  /** Lets the batches in flight finish sending before DeliveryOutcomes records the rest (before application shutdown). */
  async onModuleDestroy(): Promise<void> {
    this.clock.close();
    await this.worker.close();
  }
}

type DeliveryWorkerOptions = Omit<WorkerOptions, 'connection'>;

/** The delivery queue's worker settings, from the timers settings. */
function deliveryWorkerOptions(config: TimersConfig): DeliveryWorkerOptions {
  return {
    concurrency: deliveryJobConcurrency(config),
    lockDuration: config.TIMERS_DELIVERY_LOCK_MS,
    stalledInterval: config.TIMERS_DELIVERY_LOCK_MS,
    // A batch whose worker died is not run again by BullMQ: its timers' leases lapse and schedulers
    // claim them again, so a timer is re-sent once, not once per mechanism.
    maxStalledCount: 0,
    autorun: false,
  };
}

/**
 * Batches a worker runs at once: enough to keep TIMERS_DELIVERY_CONCURRENCY requests in flight
 * (WebhookSender caps them), and one more so a batch waiting on a slow host does not idle the others.
 * Armed timers do not travel through the queue (the scheduler hands them to delivery in its own process).
 */
function deliveryJobConcurrency(config: TimersConfig): number {
  return Math.ceil(config.TIMERS_DELIVERY_CONCURRENCY / config.TIMERS_DELIVERY_BATCH) + 1;
}

/** The processor on the delivery queue, whose name and worker settings are known once the config is read. */
function timerDeliveryProcessorOn(queueName: string, options: DeliveryWorkerOptions): Type<TimerDeliveryProcessor> {
  @Processor(queueName, options)
  class ConfiguredTimerDeliveryProcessor extends TimerDeliveryProcessor {}
  return ConfiguredTimerDeliveryProcessor;
}

export const timerDeliveryProcessorProvider: Provider = {
  provide: TimerDeliveryProcessor,
  inject: [TimerDeliveryService, DeliveryClock, TIMERS_CONFIG],
  useFactory: (delivery: TimerDeliveryService, clock: DeliveryClock, config: TimersConfig) =>
    new (timerDeliveryProcessorOn(timerDeliveryQueueName(config), deliveryWorkerOptions(config)))(delivery, clock),
};
