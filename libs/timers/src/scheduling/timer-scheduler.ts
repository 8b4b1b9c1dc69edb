import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliveryClock } from '../delivery/delivery-clock';
import { TimerDeliveryQueue } from '../storage/timer-delivery-queue';
import { inSpan } from '@bufferq/telemetry';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { TimersDeliveryMetrics } from '../delivery/timers-delivery.metrics';
import { ClaimedTimer, DueIndex } from '../storage/due-index/due-index';

/**
 * Moves timers that are due, or due within TIMERS_SCHEDULER_LOOKAHEAD_MS (armed: sent at their run time,
 * see DeliveryClock), from the Redis due index to the delivery queue, in jobs of TIMERS_DELIVERY_BATCH.
 * Every worker replica runs one; the claim script hands each timer to exactly one of them, leased (see
 * DeliveryLeases). A crash between claim and enqueue loses nothing: the leases lapse and the timers are
 * claimed again; a failed enqueue hands them back at once. It claims only while fewer than TIMERS_SCHEDULER_BATCH timers wait in the queue or are
 * held armed in this process, so claimed timers do not wait longer than their lease, and timers due now
 * are not held up behind many armed ones.
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
    private readonly clock: DeliveryClock,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
    private readonly metrics: TimersDeliveryMetrics,
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
    const batch = this.config.TIMERS_DELIVERY_BATCH;
    const queued = (await this.deliveryQueue.waitingBatches()) * batch;
    const limit = this.config.TIMERS_SCHEDULER_BATCH - queued - this.clock.size;
    if (limit <= 0) return 0;
    const claimedAt = Date.now();
    const due = await this.dueIndex.claimDue(now, limit, now + this.config.TIMERS_SCHEDULER_LOOKAHEAD_MS);
    if (!due.length) return 0;
    this.metrics.claimed(due.length);
    // Traced from the claim on (an empty poll is not worth a span): the delivery jobs carry its context
    // to the worker that POSTs, which sends it on as `traceparent`.
    return inSpan('timers claim', { startTime: claimedAt, attributes: { 'timers.claimed': due.length } }, () =>
      this.enqueueClaimed(due, now),
    );
  }

  private async enqueueClaimed(due: ClaimedTimer[], now: number): Promise<number> {
    try {
      await this.deliveryQueue.enqueue(due);
    } catch (error) {
      // Give them back now rather than when their leases lapse, each at its own run time: an armed one
      // handed back as due would be claimed again as due and sent up to the lookahead early. A timer
      // cancelled meanwhile stays out (the script gives back only what this claim still holds); if the
      // jobs were added after all (a reply lost), their claim is gone and they send nothing.
      await this.dueIndex
        .giveBack(due.map((timer) => ({ id: timer.id, claim: timer.claim, runAt: timer.runAt ?? now })))
        .catch(() => undefined);
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
      // A full delivery batch moved means more may be due now: go again at once (the queue bounds it).
      // Fewer: wait a poll, so timers falling due one by one during a burst travel in batches, not as
      // a stream of tiny jobs whose per-job cost would hold delivery back.
      const fullBatch = Math.min(this.config.TIMERS_DELIVERY_BATCH, this.config.TIMERS_SCHEDULER_BATCH);
      if (moved < fullBatch) await this.pause();
    }
  }

  private async pause(): Promise<void> {
    await sleep(this.config.TIMERS_SCHEDULER_POLL_MS, undefined, {
      signal: this.stopped.signal,
    }).catch(() => undefined);
  }
}
