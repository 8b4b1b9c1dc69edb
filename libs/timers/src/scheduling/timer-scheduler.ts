import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { TimerDeliveryQueue } from '../delivery/timer-delivery-queue';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { DueIndex } from './due-index';

/**
 * Moves due timers from the Redis due index to the delivery queue, a batch at a time. Every worker
 * replica runs one; the claim script hands each due timer to exactly one of them. A crash between claim
 * and enqueue loses nothing: the timer is still pending in MongoDB and the reconciler re-indexes it.
 */
@Injectable()
export class TimerScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TimerScheduler.name);
  private running = false;
  private loop?: Promise<void>;
  private readonly stopped = new AbortController();

  constructor(
    private readonly dueIndex: DueIndex,
    private readonly deliveryQueue: TimerDeliveryQueue,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.running = true;
    this.loop = this.run();
  }

  async onModuleDestroy(): Promise<void> {
    this.running = false;
    this.stopped.abort();
    await this.loop;
  }

  /** One scheduling step; returns how many timers it moved. */
  async moveDueTimers(now = Date.now()): Promise<number> {
    const due = await this.dueIndex.claimDue(now, this.config.TIMERS_SCHEDULER_BATCH);
    if (!due.length) return 0;
    try {
      await this.deliveryQueue.enqueue(due);
    } catch (error) {
      await this.dueIndex.add(due).catch(() => undefined);
      throw error;
    }
    return due.length;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let moved = 0;
      try {
        moved = await this.moveDueTimers();
      } catch (error) {
        this.logger.warn(`moving due timers failed: ${(error as Error).message}`);
      }
      // A full batch means more may be due: go again at once; otherwise wait for the next poll.
      if (moved < this.config.TIMERS_SCHEDULER_BATCH) await this.pause();
    }
  }

  private async pause(): Promise<void> {
    await sleep(this.config.TIMERS_SCHEDULER_POLL_MS, undefined, {
      signal: this.stopped.signal,
    }).catch(() => undefined);
  }
}
