import { Inject, Injectable, Logger } from '@nestjs/common';
import { DueIndex } from '../scheduling/due-index';
import { TimersRepository } from '../storage/timers.repository';
import { parseTimerId } from '../timer';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { retryDelayMs } from './retry-backoff';
import { WebhookSender } from './webhook-sender';

export type DeliveryResult = 'delivered' | 'retry-scheduled' | 'failed' | 'skipped';

/**
 * One delivery attempt of one timer: claim the attempt in MongoDB, POST, record the outcome. A retry is
 * written to MongoDB first and then to the due index, so it survives a Redis wipe like any timer.
 */
@Injectable()
export class TimerDeliveryService {
  private readonly logger = new Logger(TimerDeliveryService.name);

  constructor(
    private readonly timers: TimersRepository,
    private readonly dueIndex: DueIndex,
    private readonly sender: WebhookSender,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {}

  async deliver(id: string, runAt: number): Promise<DeliveryResult> {
    const timerId = parseTimerId(id);
    if (!timerId) return 'skipped';
    const timer = await this.timers.claimAttempt(timerId, new Date(runAt));
    // Cancelled, already delivered or failed, or a stale job of an attempt that was rescheduled.
    if (!timer) return 'skipped';

    const outcome = await this.sender.send(timer.url, id);
    if (outcome.delivered) {
      await this.timers.markDelivered(timerId);
      return 'delivered';
    }
    if (outcome.retryable && timer.attempts < this.config.TIMERS_MAX_ATTEMPTS) {
      const nextRunAt =
        Date.now() +
        retryDelayMs(
          timer.attempts,
          this.config.TIMERS_BACKOFF_BASE_MS,
          this.config.TIMERS_BACKOFF_MAX_MS,
        );
      await this.timers.scheduleRetry(timerId, new Date(nextRunAt), outcome.error);
      await this.dueIndex.add([{ id, runAt: nextRunAt }]).catch((error: Error) => {
        // MongoDB already has the retry; the reconciler puts it back into the index.
        this.logger.warn(
          `timer ${id}: retry not indexed in Redis (${error.message}); the reconciler will add it`,
        );
      });
      return 'retry-scheduled';
    }
    await this.timers.markFailed(timerId, outcome.error);
    return 'failed';
  }
}
