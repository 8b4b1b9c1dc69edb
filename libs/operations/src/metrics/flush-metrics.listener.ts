import { OnQueueEvent, QueueEventsHost, QueueEventsListener } from '@nestjs/bullmq';
import { Counter, Histogram } from 'prom-client';
import { FLUSH_QUEUE, FlushReport } from '@bufferq/buffered-increments';
import { processMetric } from './registry';

const flushDuration = processMetric(
  'flush_duration_seconds',
  () =>
    new Histogram({
      name: 'flush_duration_seconds',
      help: 'Duration of flushes of the Redis buffer to MongoDB (any worker)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
);
const fieldsFlushed = processMetric(
  'flush_fields_total',
  () => new Counter({ name: 'flush_fields_total', help: 'Buffered fields written to MongoDB' }),
);
const documentsFlushed = processMetric(
  'flush_documents_total',
  () => new Counter({ name: 'flush_documents_total', help: 'Documents updated in MongoDB by flushes' }),
);
const flushFailures = processMetric(
  'flush_failures_total',
  () =>
    new Counter({
      name: 'flush_failures_total',
      help: 'Flush jobs that failed (the buffer keeps the data and retries)',
    }),
);

/**
 * Flushes run in the workers; their `flush` jobs report to the api through BullMQ's queue events, so
 * one scrape of any api replica shows the flush metrics of the whole system (each replica counts every
 * flush: aggregate with max(), not sum()).
 */
@QueueEventsListener(FLUSH_QUEUE)
export class FlushMetricsListener extends QueueEventsHost {
  @OnQueueEvent('completed')
  onFlushed({ returnvalue }: { returnvalue: unknown }): void {
    const report = (
      typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue
    ) as Partial<FlushReport> | null;
    if (!report || typeof report.durationMs !== 'number') return;
    flushDuration.observe(report.durationMs / 1000);
    fieldsFlushed.inc(report.fields ?? 0);
    documentsFlushed.inc(report.documents ?? 0);
  }

  @OnQueueEvent('failed')
  onFlushFailed(): void {
    flushFailures.inc();
  }

  /**
   * After a Redis restart, QueueEvents.close() can wait forever on its blocking read; the api must still
   * shut down. Nothing is lost by cutting the connection: these events only feed metrics.
   */
  override async onApplicationShutdown(): Promise<void> {
    const events = this.queueEvents;
    const closed = Promise.resolve(events.close()).then(() => true);
    const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000).unref());
    if (await Promise.race([closed, timedOut])) return;
    // Cut the connection without waiting for BullMQ to acknowledge it.
    void events.disconnect().catch(() => undefined);
  }
}
