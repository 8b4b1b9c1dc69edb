import { Counter, Gauge, register } from 'prom-client';
import type { BufferStats } from '@bufferq/buffered-increments';

type StatsSource = () => Promise<BufferStats>;

let statsSource: StatsSource | undefined;

function metric<T>(name: string, create: () => T): T {
  // One registry per process; an app built twice in one process (tests) reuses the metric.
  return (register.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * The counters' Prometheus metrics in the default registry (served by the operations lib's /metrics).
 * The gauges read the buffer at scrape time; the latest app built in the process is the one measured.
 */
export function counterMetrics(stats: StatsSource) {
  statsSource = stats;
  const incrementsAccepted = metric(
    'counters_increments_accepted_total',
    () => new Counter({ name: 'counters_increments_accepted_total', help: 'Counter increments accepted (durable in Redis)' }),
  );
  metric(
    'counters_buffered_fields',
    () =>
      new Gauge({
        name: 'counters_buffered_fields',
        help: 'Counter fields waiting in Redis for the next flush',
        async collect() {
          if (statsSource) this.set((await statsSource()).bufferedFields);
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
          if (statsSource) this.set((await statsSource()).oldestPendingAgeMs / 1000);
        },
      }),
  );
  return { incrementsAccepted };
}
