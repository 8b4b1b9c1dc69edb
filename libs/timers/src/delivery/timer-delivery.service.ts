import { Injectable } from '@nestjs/common';
import { ObjectId } from 'mongodb';
import { ClaimedTimer, DueTimer, DueIndex } from '../scheduling/due-index';
import { TimersRepository } from '../storage/timers.repository';
import { parseTimerId } from '../timer';
import { DeliveryLeases } from './delivery-leases';
import { DeliveryOutcomes, DeliveryResult } from './delivery-outcomes';
import { WebhookSender } from './webhook-sender';

/** What a batch came to, per timer result; `skipped`: finished, cancelled, unknown or not due yet. */
export type BatchResult = Record<DeliveryResult | 'skipped', number>;

/**
 * Delivers a batch of claimed timers: POST each one, then hand the outcome to DeliveryOutcomes, which
 * records it in MongoDB after the fact. Nothing is written before the POST: a timer staged in Redis
 * (url and attempts, see DueIndex) is sent straight away; only one that was not staged is read from
 * MongoDB first (one read per batch), which also skips it when it finished or is not due any more.
 */
@Injectable()
export class TimerDeliveryService {
  constructor(
    private readonly timers: TimersRepository,
    private readonly dueIndex: DueIndex,
    private readonly sender: WebhookSender,
    private readonly leases: DeliveryLeases,
    private readonly outcomes: DeliveryOutcomes,
  ) {}

  async deliverBatch(claimed: ClaimedTimer[]): Promise<BatchResult> {
    const result: BatchResult = { delivered: 0, 'retry-scheduled': 0, failed: 0, skipped: 0 };
    const ids = claimed.map((timer) => timer.id);
    await this.leases.hold(ids);
    let toSend: Array<{ id: string; url: string; attempts: number }>;
    try {
      toSend = await this.resolve(claimed, result);
    } catch (error) {
      // Not sent: the leases lapse and a scheduler claims these timers again.
      ids.forEach((id) => this.leases.release(id));
      throw error;
    }
    const sending = new Set(toSend.map((timer) => timer.id));
    for (const id of ids) if (!sending.has(id)) this.leases.release(id);

    await Promise.all(
      toSend.map(async (timer) => {
        const outcome = await this.sender.send(timer.url, timer.id);
        result[this.outcomes.record({ ...timer, outcome })]++;
      }),
    );
    await this.outcomes.capacity();
    return result;
  }

  /** The timers to send now, with url and attempts; settles or reschedules the rest. */
  private async resolve(
    claimed: ClaimedTimer[],
    result: BatchResult,
  ): Promise<Array<{ id: string; url: string; attempts: number }>> {
    const toSend: Array<{ id: string; url: string; attempts: number }> = [];
    const unstaged: ObjectId[] = [];
    const finished: string[] = [];
    for (const timer of claimed) {
      const timerId = parseTimerId(timer.id);
      if (!timerId) finished.push(timer.id);
      else if (timer.staged) toSend.push({ id: timer.id, ...timer.staged });
      else unstaged.push(timerId);
    }
    const notDue: DueTimer[] = [];
    if (unstaged.length) {
      const now = Date.now();
      const found = new Map(
        (await this.timers.findForDelivery(unstaged)).map((timer) => [
          timer._id.toHexString(),
          timer,
        ]),
      );
      for (const timerId of unstaged) {
        const id = timerId.toHexString();
        const timer = found.get(id);
        if (!timer || !(timer.status === 'pending' || timer.status === 'delivering'))
          finished.push(id);
        else if (timer.runAt.getTime() > now)
          notDue.push({ id, runAt: timer.runAt.getTime() }); // e.g. a stale index entry of a rescheduled timer
        else toSend.push({ id, url: timer.url, attempts: timer.attempts });
      }
    }
    if (finished.length) await this.dueIndex.settle(finished);
    if (notDue.length) await this.dueIndex.add(notDue);
    result.skipped += finished.length + notDue.length;
    return toSend;
  }
}
