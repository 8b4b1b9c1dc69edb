import { Inject, Injectable } from '@nestjs/common';
import { ClaimedTimer, DueIndex, ReturnedTimer } from '../storage/due-index/due-index';
import { TimersRepository } from '../storage/timers.repository';
import { parseTimerId } from '../timer';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { TimersDeliveryMetrics } from './timers-delivery.metrics';
import { DeliveryClock } from './delivery-clock';
import { DeliveryLeases } from './delivery-leases';
import { DeliveryOutcomes, DeliveryResult, SentAttempt } from './delivery-outcomes';
import { SendOutcome, WebhookSender } from './webhook/webhook-sender';

/**
 * What a batch came to, per timer result; `skipped`: finished, cancelled, unknown, not due yet, or taken
 * over by another claim (its lease lapsed before this batch sent it).
 */
export type BatchResult = Record<DeliveryResult | 'skipped', number>;

/**
 * A claimed timer ready to send: its url and attempts, the claim that holds it; `runAt` when it is armed
 * (sent at that time).
 */
interface TimerToSend {
  id: string;
  claim: string;
  url: string;
  attempts: number;
  runAt?: number;
  /** When it fell due (ms), for the lateness of its POST. */
  dueAt?: number;
  /** What its POST came to, once sent (the timer is then its own SentAttempt). */
  outcome?: SendOutcome;
}

/**
 * Delivers a batch of claimed timers: POST each one, then hand the outcome to DeliveryOutcomes, which
 * records it in MongoDB after the fact. Nothing is written before the POST: a timer staged in Redis
 * (url and attempts, see DueIndex) is ready at once; only one that was not staged is read from MongoDB
 * first (one read per batch), which also skips it when it finished or is not due any more. A timer that
 * is due is sent straight away; an armed one (claimed ahead of its run time) waits in DeliveryClock and
 * is sent when it falls due, unless it was cancelled meanwhile.
 *
 * Right before sending, the batch takes its timers (DueIndex.take: one Redis call for the due ones, one
 * per group of armed ones falling due together) and sends only those its claim still holds. A batch can
 * wait in the queue longer than its leases (every job slot busy with a slow receiver); a scheduler then
 * re-claims its timers and their new holder sends them, so this one must not send its staged copies.
 */
@Injectable()
export class TimerDeliveryService {
  constructor(
    private readonly timers: TimersRepository,
    private readonly dueIndex: DueIndex,
    private readonly sender: WebhookSender,
    private readonly leases: DeliveryLeases,
    private readonly outcomes: DeliveryOutcomes,
    private readonly clock: DeliveryClock,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
    private readonly metrics: TimersDeliveryMetrics,
  ) {}

  async deliverBatch(claimed: ClaimedTimer[]): Promise<BatchResult> {
    const result: BatchResult = { delivered: 0, 'retry-scheduled': 0, failed: 0, skipped: 0 };
    const ids = claimed.map((timer) => timer.id);
    await this.leases.hold(ids);
    let toSend: TimerToSend[];
    try {
      toSend = await this.resolve(claimed, result);
    } catch (error) {
      // Not sent: the leases lapse and a scheduler claims these timers again.
      ids.forEach((id) => this.leases.release(id));
      throw error;
    }
    const sending = new Set(toSend.map((timer) => timer.id));
    for (const id of ids) if (!sending.has(id)) this.leases.release(id);

    // One callback per POST and a count, not a promise per POST (see WebhookSender.sendThen); the
    // batch resolves once every POST it started has its outcome.
    let inFlight = 0;
    let handingOver = true;
    let allSent!: () => void;
    const sent = new Promise<void>((resolve) => (allSent = resolve));
    const send = (timer: TimerToSend) => {
      this.metrics.sending(timer.dueAt ?? timer.runAt);
      inFlight++;
      this.sender.sendThen(timer.url, timer.id, (outcome) => {
        // The timer itself is the record of its attempt: in a burst, outcomes wait for the sender to
        // pause, and a new object per POST kept that long is what the worker's GC copies and promotes.
        const attempt = timer as SentAttempt;
        attempt.outcome = outcome;
        const recorded = this.outcomes.record(attempt);
        this.metrics.sent(recorded, outcome);
        result[recorded]++;
        if (--inFlight === 0 && !handingOver) allSent();
      });
    };
    const armed = new Map<string, TimerToSend & { runAt: number }>();
    const due: TimerToSend[] = [];
    for (const timer of toSend) {
      if (isArmed(timer)) armed.set(timer.id, timer);
      else due.push(timer);
    }
    if (armed.size) {
      const armedTimers = [...armed.values()];
      this.sender.connectAhead(armedTimers.map((timer) => timer.url));
      this.sender.signAhead(armedTimers);
    }
    if (due.length) {
      let taken: boolean[];
      try {
        taken = await this.dueIndex.take(due);
      } catch (error) {
        // Not sent: the leases lapse and a scheduler claims these timers again.
        for (const timer of [...due, ...armed.values()]) this.leases.release(timer.id);
        throw error;
      }
      due.forEach((timer, i) => {
        if (taken[i]) send(timer);
        else {
          this.leases.release(timer.id);
          result.skipped++;
        }
      });
    }
    const notFired = await this.clock.whenDue([...armed.values()], (id) => send(armed.get(id)!));
    for (const id of notFired) this.leases.release(id);
    result.skipped += notFired.length;
    handingOver = false;
    if (inFlight === 0) allSent();
    await sent;
    await this.outcomes.capacity();
    return result;
  }

  /**
   * The timers to send, with url and attempts (and run time when armed); settles or reschedules the rest.
   */
  private async resolve(claimed: ClaimedTimer[], result: BatchResult): Promise<TimerToSend[]> {
    const toSend: TimerToSend[] = [];
    const unstaged = new Map<string, ClaimedTimer>();
    const finished: string[] = [];
    for (const timer of claimed) {
      if (!parseTimerId(timer.id)) finished.push(timer.id);
      else if (timer.staged)
        toSend.push({ id: timer.id, claim: timer.claim, ...timer.staged, runAt: timer.runAt, dueAt: timer.dueAt });
      else unstaged.set(timer.id, timer);
    }
    const notDue: ReturnedTimer[] = [];
    if (unstaged.size) {
      const now = Date.now();
      const found = new Map(
        (await this.timers.findForDelivery([...unstaged.keys()].map((id) => parseTimerId(id)!))).map((timer) => [
          timer._id.toHexString(),
          timer,
        ]),
      );
      for (const { id, claim, runAt: armedAt } of unstaged.values()) {
        const timer = found.get(id);
        if (!timer || !(timer.status === 'pending' || timer.status === 'delivering')) finished.push(id);
        else {
          const runAt = timer.runAt.getTime();
          // An index entry older than MongoDB's run time (a rescheduled timer): back to the index, unless
          // it was armed and MongoDB's time is still within the lookahead (then it waits for that time).
          if (armedAt === undefined ? runAt > now : runAt > now + this.config.TIMERS_SCHEDULER_LOOKAHEAD_MS)
            notDue.push({ id, claim, runAt });
          else
            toSend.push({
              id,
              claim,
              url: timer.url,
              attempts: timer.attempts,
              dueAt: runAt,
              ...(armedAt === undefined ? {} : { runAt: Math.max(armedAt, runAt) }),
            });
        }
      }
    }
    if (finished.length) await this.dueIndex.settle(finished);
    if (notDue.length) await this.dueIndex.giveBack(notDue);
    result.skipped += finished.length + notDue.length;
    return toSend;
  }
}

function isArmed(timer: TimerToSend): timer is TimerToSend & { runAt: number } {
  return timer.runAt !== undefined;
}
