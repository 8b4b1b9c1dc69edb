import { Injectable } from '@nestjs/common';
import { CapabilityMetrics } from '@bufferq/operations';
import type { DeliveryResult } from './delivery-outcomes';
import type { SendOutcome } from './webhook/webhook-sender';

/** The labels of answers by their first digit, made once (a label string per POST is garbage in a burst). */
const STATUS_CLASSES = Array.from({ length: 10 }, (_, digit) => `${digit}xx`);

/** What a POST's answer was, as a label: `2xx` ... `5xx`, or `timeout`, `network`, `refused` (not sent). */
export function statusClass(outcome: SendOutcome): string {
  if (outcome.delivered)
    return STATUS_CLASSES[Math.floor(outcome.status / 100)] ?? `${Math.floor(outcome.status / 100)}xx`;
  const status = /^HTTP (\d)\d\d/.exec(outcome.error);
  if (status) return `${status[1]}xx`;
  if (outcome.error.startsWith('timed out')) return 'timeout';
  if (outcome.error.startsWith('network error')) return 'network';
  return 'refused';
}

/** Delivery in this worker: timers claimed, POSTs by outcome and answer, and how late they were sent. */
@Injectable()
export class TimersDeliveryMetrics extends CapabilityMetrics {
  private readonly claimedTimers = this.counter({
    name: 'timers_claimed_total',
    help: 'Timers this worker claimed from the due index for delivery (re-claims of lapsed leases included)',
  });
  /**
   * POSTs counted since the last scrape, per label pair: a worker sends tens of thousands a second, and a
   * map entry costs a fraction of a labelled prom-client increment; each scrape adds them to the counter.
   */
  private readonly unscraped = new Map<
    DeliveryResult,
    Map<string, { labels: { outcome: string; status_class: string }; count: number }>
  >();
  private readonly deliveries = this.counter({
    name: 'timers_deliveries_total',
    help: 'Webhook POSTs by what they came to (delivered, retry-scheduled, failed) and answer (2xx..5xx, timeout, network, refused)',
    labelNames: ['outcome', 'status_class'],
    collect: () => {
      for (const byStatus of this.unscraped.values())
        for (const entry of byStatus.values()) {
          if (entry.count === 0) continue;
          this.deliveries.inc(entry.labels, entry.count);
          entry.count = 0;
        }
    },
  });
  private readonly lateness = this.histogram({
    name: 'timers_delivery_lateness_seconds',
    help: 'From the time a timer (or its retry) fell due to its POST, whether claimed ahead of time or after',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });

  claimed(count: number): void {
    this.claimedTimers.inc(count);
  }

  /** A POST starts now for a timer due at `dueAt` (ms), when known (a lapsed lease claimed again is not). */
  sending(dueAt: number | undefined): void {
    if (dueAt !== undefined) this.lateness.observe(Math.max(0, Date.now() - dueAt) / 1000);
  }

  sent(result: DeliveryResult, outcome: SendOutcome): void {
    const status = statusClass(outcome);
    let byStatus = this.unscraped.get(result);
    if (!byStatus) this.unscraped.set(result, (byStatus = new Map()));
    const entry = byStatus.get(status);
    if (entry) entry.count++;
    else byStatus.set(status, { labels: { outcome: result, status_class: status }, count: 1 });
  }
}
