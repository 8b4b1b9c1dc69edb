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
import { DeliveryResult, TimerDeliveryService } from './timer-delivery.service';

/** Consumes the delivery queue; it checks the job's shape and hands it to TimerDeliveryService. */
@Injectable()
export class TimerDeliveryProcessor implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TimerDeliveryProcessor.name);
  private worker?: Worker<TimerDeliveryJob, DeliveryResult>;

  constructor(
    private readonly delivery: TimerDeliveryService,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
    private readonly env: ConfigService,
  ) {}

  onApplicationBootstrap(): void {
    this.worker = new Worker<TimerDeliveryJob, DeliveryResult>(
      TIMER_DELIVERY_QUEUE,
      (job) => this.process(job),
      {
        connection: bullmqConnection(this.env.getOrThrow<string>('REDIS_URL')),
        prefix: this.config.TIMERS_REDIS_PREFIX,
        concurrency: this.config.TIMERS_DELIVERY_CONCURRENCY,
        // A worker that dies mid-delivery stops renewing the job's lock; once it lapses another worker
        // re-runs the job, so the timer is delivered again with the same delivery id (at-least-once).
        lockDuration: this.config.TIMERS_DELIVERY_LOCK_MS,
        stalledInterval: this.config.TIMERS_DELIVERY_LOCK_MS,
      },
    );
    this.worker.on('failed', (job, error) =>
      this.logger.warn(`delivery job ${job?.id} failed: ${error.message}`),
    );
    this.worker.on('stalled', (jobId) =>
      this.logger.warn(`delivery job ${jobId} stalled (its worker died?); running it again`),
    );
    this.worker.on('error', (error) => this.logger.error(`delivery worker: ${error.message}`));
  }

  process(job: Job<TimerDeliveryJob>): Promise<DeliveryResult> {
    const { id, runAt } = job.data ?? {};
    if (typeof id !== 'string' || typeof runAt !== 'number')
      throw new UnrecoverableError(`malformed delivery job ${job.id}`);
    return this.delivery.deliver(id, runAt);
  }

  /** Lets the deliveries in flight finish (their outcome reaches MongoDB) before connections close. */
  async onModuleDestroy(): Promise<void> {
    await this.worker?.close();
  }
}
