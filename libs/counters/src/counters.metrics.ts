import { Counter, Gauge, register } from 'prom-client';
import type { BufferStats } from '@bufferq/buffered-increments';
import { COUNTERS_COLLECTION } from './counters.constants';

/** What the gauges read from the counters' buffer at scrape time. */
export interface CounterMetricSources {
  stats: () => Promise<BufferStats>;
  /** Updates MongoDB refused for good, waiting in the buffer's dead-letter list. */
  deadLetterCount: () => Promise<number>;
}

let sources: CounterMetricSources | undefined;

function metric<T>(name: string, create: () => T): T {
  // One registry per process; an app built twice in one process (tests) reuses the metric.
  return (register.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * The counters' Prometheus metrics in the default registry (served by the operations lib's /metrics).
 * The gauges read the buffer at scrape time; the latest app built in the process is the one measured.
 */
export function counterMetrics(buffer: CounterMetricSources) {
  sources = buffer;
  const incrementsAccepted = metric(
    'counters_increments_accepted_total',
    () =>
      new Counter({
        name: 'counters_increments_accepted_total',
        help: 'Counter increments accepted (durable in Redis)',
      }),
  );
  metric(
    'counters_buffered_fields',
    () =>
      new Gauge({
        name: 'counters_buffered_fields',
        help: 'Counter fields waiting in Redis for the next flush',
        async collect() {
          if (sources) this.set((await sources.stats()).bufferedFields);
        },
      }),
  );
  metric(
    'counters_oldest_pending_age_seconds',
    () =>
      new Gauge({
        name: 'counters_oldest_pending_age_seconds',
        help: 'Age of the oldest counter increment not yet in MongoDB',
        async collect() {
          if (sources) this.set((await sources.stats()).oldestPendingAgeMs / 1000);
        },
      }),
  );
  metric(
    'bufferq_dead_letters',
    () =>
      new Gauge({
        name: 'bufferq_dead_letters',
        help: 'Buffered updates MongoDB refused for good (e.g. $inc on a string), kept for replay or drop',
        labelNames: ['collection'],
        async collect() {
          if (sources) this.set({ collection: COUNTERS_COLLECTION }, await sources.deadLetterCount());
        },
      }),
  );
  return { incrementsAccepted };
}
