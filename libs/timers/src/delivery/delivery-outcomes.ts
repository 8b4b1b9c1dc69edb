import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { ObjectId } from 'mongodb';
import { DueIndex } from '../storage/due-index/due-index';
import { MicroBatcher } from '../storage/micro-batcher';
import { TimersRepository } from '../storage/timers.repository';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { DeliveryClock } from './delivery-clock';
import { DeliveryLeases } from './delivery-leases';
import { retryDelayMs } from './retry-backoff';
import { SendOutcome, WebhookSender } from './webhook/webhook-sender';

export type DeliveryResult = 'delivered' | 'retry-scheduled' | 'failed';

/** A POST that was sent, and what the worker knew of the timer when it sent it. */
export interface SentAttempt {
  id: string;
  url: string;
  /** Attempts recorded before this one. */
  attempts: number;
  outcome: SendOutcome;
}

/** Outcomes waiting for MongoDB beyond which delivery batches wait (backpressure on a slow database). */
const MAX_UNRECORDED = 50_000;
const WRITE_RETRY_MS = 1_000;
/**
 * Longest an outcome waits for the sender to pause before it is recorded anyway. During a burst the
 * writes (driver work here, and the database's CPU when it shares the machine) would take CPU from the
 * POSTs still to send; waiting costs only freshness: the lease stays renewed meanwhile.
 */
const MAX_RECORD_DEFERRAL_MS = 2_000;
const PAUSE_POLL_MS = 20;
/**
 * The sender has not paused while an armed timer falls due within this time: in a burst the sender goes
 * idle between groups of timers falling due together (when it has caught up), and recording then would
 * put the database's and the driver's CPU in the middle of the burst.
 */
const ARMED_DUE_SOON_MS = 1_000;

/**
 * Records what each sent attempt came to, after the POST and off the delivery path: MongoDB first (the
 * source of truth: delivered, retry scheduled or failed), then the due index (settle the timer, or
 * schedule its retry). Delivered outcomes are written in batches (one statement per batch). The timer
 * stays leased (DeliveryLeases) until both writes are done, so no other worker claims it meanwhile; if
 * this process dies first, the lease lapses and the timer is delivered again with the same delivery id.
 */
@Injectable()
export class DeliveryOutcomes implements BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliveryOutcomes.name);
  private readonly settling = new MicroBatcher(async (ids: string[]) => {
    await this.dueIndex.settle(ids);
    return ids.map(() => undefined);
  });
  /** Attempts sent and not recorded yet: queued (nothing started for them), then being recorded. */
  private queued: SentAttempt[] = [];
  private readonly unrecorded = new Set<Promise<void>>();
  private draining?: Promise<void>;
  private waiting: Array<() => void> = [];
  private stopping = false;
  private pause?: Promise<void>;

  constructor(
    private readonly timers: TimersRepository,
    private readonly dueIndex: DueIndex,
    private readonly leases: DeliveryLeases,
    private readonly sender: WebhookSender,
    private readonly clock: DeliveryClock,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {}

  /**
   * Queues the attempt for recording; returns what it came to. Wait on `capacity()` before sending more.
   * Only a push while POSTs are in flight: the writes, and the promises and closures that carry them, are
   * made once the sender pauses, for all attempts queued by then at once.
   */
  record(attempt: SentAttempt): DeliveryResult {
    this.queued.push(attempt);
    this.draining ??= this.drain();
    return this.resultOf(attempt);
  }

  private async drain(): Promise<void> {
    while (this.queued.length) {
      await this.sendingPause();
      const attempts = this.queued;
      this.queued = [];
      for (const attempt of attempts) this.startRecording(attempt);
    }
    this.draining = undefined;
  }

  private startRecording(attempt: SentAttempt): void {
    const result = this.resultOf(attempt);
    const recording = this.inOrder(attempt.id, this.steps(attempt, result))
      .catch((error: Error) =>
        this.logger.warn(
          `timer ${attempt.id}: outcome ${result} not recorded (${error.message}); its lease lapses and it is sent again`,
        ),
      )
      .finally(() => {
        this.leases.release(attempt.id);
        this.unrecorded.delete(recording);
        if (this.backlog < MAX_UNRECORDED) this.waiting.splice(0).forEach((go) => go());
      });
    this.unrecorded.add(recording);
  }

  /**
   * Resolves at once when no POST is in flight nor an armed timer due soon; else once so (checked every PAUSE_POLL_MS), or
   * MAX_RECORD_DEFERRAL_MS later, or when the process stops. All outcomes waiting share one pause.
   */
  private sendingPause(): Promise<void> {
    if (!this.sending) return Promise.resolve();
    this.pause ??= new Promise<void>((resolve) => {
      const until = Date.now() + MAX_RECORD_DEFERRAL_MS;
      const check = () => {
        if (this.sending && Date.now() < until && !this.stopping) {
          setTimeout(check, PAUSE_POLL_MS);
          return;
        }
        this.pause = undefined;
        resolve();
      };
      setTimeout(check, PAUSE_POLL_MS);
    });
    return this.pause;
  }

  /** POSTs in flight, or armed timers falling due soon (see ARMED_DUE_SOON_MS). */
  private get sending(): boolean {
    return this.sender.busy || this.clock.dueWithin(ARMED_DUE_SOON_MS);
  }

  /** Resolves once fewer than MAX_UNRECORDED outcomes wait for MongoDB. */
  async capacity(): Promise<void> {
    while (this.backlog >= MAX_UNRECORDED) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** How many outcomes are not yet recorded. */
  get backlog(): number {
    return this.queued.length + this.unrecorded.size;
  }

  /**
   * After the delivery processor stopped (module destroy): lets recordings in flight finish (one more try
   * each if MongoDB fails) before connections close (application shutdown).
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    await this.draining;
    await Promise.all(this.unrecorded);
  }

  /** What the attempt came to. */
  private resultOf({ outcome, attempts }: SentAttempt): DeliveryResult {
    if (outcome.delivered) return 'delivered';
    return outcome.retryable && attempts + 1 < this.config.TIMERS_MAX_ATTEMPTS ? 'retry-scheduled' : 'failed';
  }

  /** The writes recording the attempt's result, in order (MongoDB, then Redis). */
  private steps(attempt: SentAttempt, result: DeliveryResult): Array<() => Promise<void>> {
    const timerId = ObjectId.createFromHexString(attempt.id);
    const { outcome } = attempt;
    if (outcome.delivered) return [() => this.timers.recordDelivered(timerId), () => this.settling.submit(attempt.id)];
    if (result === 'retry-scheduled') {
      const attemptsMade = attempt.attempts + 1;
      const runAt =
        Date.now() + retryDelayMs(attemptsMade, this.config.TIMERS_BACKOFF_BASE_MS, this.config.TIMERS_BACKOFF_MAX_MS);
      return [
        () => this.timers.recordRetry(timerId, new Date(runAt), outcome.error),
        () =>
          this.dueIndex.reschedule([{ id: attempt.id, runAt, staged: { url: attempt.url, attempts: attemptsMade } }]),
      ];
    }
    return [() => this.timers.recordFailed(timerId, outcome.error), () => this.settling.submit(attempt.id)];
  }

  /**
   * Runs each step until it succeeds (a step is not repeated once done: `$inc attempts` must count once);
   * while stopping, gives up after one more failure.
   */
  private async inOrder(id: string, steps: Array<() => Promise<void>>): Promise<void> {
    for (const step of steps) {
      for (;;) {
        try {
          await step();
          break;
        } catch (error) {
          if (this.stopping) throw error;
          this.logger.warn(`timer ${id}: recording the outcome failed (${(error as Error).message}); trying again`);
          await sleep(WRITE_RETRY_MS);
        }
      }
    }
  }
}
