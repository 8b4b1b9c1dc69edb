import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliveryClock } from '../delivery/delivery-clock';
import { TimerDeliveryQueue } from '../storage/timer-delivery-queue';
import { inSpan } from '@bufferq/telemetry';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { TimersDeliveryMetrics } from '../delivery/timers-delivery.metrics';
import { ClaimedTimer, DueIndex } from '../storage/due-index/due-index';
import { TimerDeliveryService } from '../delivery/timer-delivery.service';

/**
 * Moves timers that are due, or due within TIMERS_SCHEDULER_LOOKAHEAD_MS, out of the Redis due index.
 * Every worker replica runs one; the claim script hands each timer to exactly one of them, leased (see
 * DeliveryLeases). Due timers go to the delivery queue in jobs of TIMERS_DELIVERY_BATCH, for whichever
 * worker is free. Timers claimed ahead of their run time (armed) stay in this process: they are handed
 * to its TimerDeliveryService in batches of the same size, which holds them in DeliveryClock and sends
 * each at its run time; the queue would only add Redis round trips, job bookkeeping and CPU right when a
 * burst falls due, and the process that claimed them holds them either way.
 *
 * A crash between claim and sending loses nothing: the leases lapse and the timers are claimed again; a
 * failed enqueue hands the due ones back at once. It claims only while fewer than TIMERS_SCHEDULER_BATCH
 * timers wait in the queue or are held armed by this process, so claimed timers do not wait longer than
 * their lease, and timers due now are not held up behind many armed ones.
 */
@Injectable()
export class TimerScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TimerScheduler.name);
  private running = false;
  private loop?: Promise<void>;
  private readonly stopped = new AbortController();
  /** Armed batches handed to delivery and not finished yet, and how many timers they hold. */
  private readonly armedBatches = new Set<Promise<void>>();
  private armedHeld = 0;

  constructor(
    private readonly dueIndex: DueIndex,
    private readonly deliveryQueue: TimerDeliveryQueue,
    private readonly clock: DeliveryClock,
    private readonly delivery: TimerDeliveryService,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
    private readonly metrics: TimersDeliveryMetrics,
  ) {}

  onApplicationBootstrap(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops claiming, then lets the armed batches send at their run times (at most the lookahead away). */
  async onModuleDestroy(): Promise<void> {
    this.running = false;
    this.stopped.abort();
    await this.loop;
    this.clock.close();
    await Promise.all(this.armedBatches);
  }

  /** One scheduling step; returns how many timers it moved. */
  async moveDueTimers(now = Date.now()): Promise<number> {
    const batch = this.config.TIMERS_DELIVERY_BATCH;
    const queued = (await this.deliveryQueue.waitingBatches()) * batch;
    const limit = this.config.TIMERS_SCHEDULER_BATCH - queued - this.armedHeld;
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

  private async enqueueClaimed(claimed: ClaimedTimer[], now: number): Promise<number> {
    const armed: ClaimedTimer[] = [];
    const due: ClaimedTimer[] = [];
    for (const timer of claimed) (timer.runAt === undefined ? due : armed).push(timer);
    const size = this.config.TIMERS_DELIVERY_BATCH;
    for (let i = 0; i < armed.length; i += size) this.holdArmed(armed.slice(i, i + size));
    if (!due.length) return claimed.length;
    try {
      await this.deliveryQueue.enqueue(due);
    } catch (error) {
      // Give them back now rather than when their leases lapse. A timer cancelled meanwhile stays out (the
      // script gives back only what this claim still holds); if the jobs were added after all (a reply
      // lost), their claim is gone and they send nothing.
      await this.dueIndex
        .giveBack(due.map((timer) => ({ id: timer.id, claim: timer.claim, runAt: now })))
        .catch(() => undefined);
      throw error;
    }
    return claimed.length;
  }

  /**
   * Delivers a batch of armed timers in this process. Not awaited: it ends once its timers are sent, at
   * their run times. If it fails before sending, its leases lapse and the timers are claimed again.
   */
  private holdArmed(batch: ClaimedTimer[]): void {
    this.armedHeld += batch.length;
    const delivering: Promise<void> = this.delivery
      .deliverBatch(batch)
      .then(
        () => undefined,
        (error: Error) => this.logger.warn(`delivering ${batch.length} armed timers failed: ${error.message}`),
      )
      .finally(() => {
        this.armedHeld -= batch.length;
        this.armedBatches.delete(delivering);
      });
    this.armedBatches.add(delivering);
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
