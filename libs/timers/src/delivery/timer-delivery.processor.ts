import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import { bullmqConnection } from '@bufferq/datastores';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { TIMER_DELIVERY_QUEUE, TimerDeliveryJob } from './timer-delivery-queue';
import { BatchResult, TimerDeliveryService } from './timer-delivery.service';

/** Consumes the delivery queue; it checks the job's shape and hands the batch to TimerDeliveryService. */
@Injectable()
export class TimerDeliveryProcessor implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TimerDeliveryProcessor.name);
  private worker?: Worker<TimerDeliveryJob, BatchResult>;

  constructor(
    private readonly delivery: TimerDeliveryService,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
    private readonly env: ConfigService,
  ) {}

  onApplicationBootstrap(): void {
    this.worker = new Worker<TimerDeliveryJob, BatchResult>(
      TIMER_DELIVERY_QUEUE,
      (job) => this.process(job),
      {
        connection: bullmqConnection(this.env.getOrThrow<string>('REDIS_URL')),
        prefix: this.config.TIMERS_REDIS_PREFIX,
        // Enough batches to keep TIMERS_DELIVERY_CONCURRENCY requests in flight (WebhookSender caps them),
        // and one more so a batch waiting on a slow host does not idle the others.
        concurrency:
          Math.ceil(this.config.TIMERS_DELIVERY_CONCURRENCY / this.config.TIMERS_DELIVERY_BATCH) +
          1,
        lockDuration: this.config.TIMERS_DELIVERY_LOCK_MS,
        stalledInterval: this.config.TIMERS_DELIVERY_LOCK_MS,
        // A batch whose worker died is not run again by BullMQ: its timers' leases lapse and schedulers
        // claim them again, so a timer is re-sent once, not once per mechanism.
        maxStalledCount: 0,
      },
    );
    this.worker.on('failed', (job, error) =>
      this.logger.warn(`delivery batch ${job?.id} failed: ${error.message}`),
    );
    this.worker.on('error', (error) => this.logger.error(`delivery worker: ${error.message}`));
  }

  process(job: Job<TimerDeliveryJob>): Promise<BatchResult> {
    const timers = job.data?.timers;
    if (!Array.isArray(timers) || !timers.every((timer) => typeof timer?.id === 'string'))
      throw new UnrecoverableError(`malformed delivery batch ${job.id}`);
    return this.delivery.deliverBatch(timers);
  }

  /** Lets the batches in flight finish sending before DeliveryOutcomes records the rest. */
  async onModuleDestroy(): Promise<void> {
    await this.worker?.close();
  }
}
