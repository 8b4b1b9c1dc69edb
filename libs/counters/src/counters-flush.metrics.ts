import { Inject, Injectable } from '@nestjs/common';
import { BUFFERED_INCREMENTS_FLUSHERS, BufferedMongoIncrements, FlushReport } from '@bufferq/buffered-increments';
import { CapabilityMetrics } from '@bufferq/operations';

/**
 * The flushes this worker runs, per buffered collection (from the buffers' `flush` and `flushError`
 * events: sum across workers), and what waits in each buffer, read at scrape time.
 */
@Injectable()
export class CountersFlushMetrics extends CapabilityMetrics {
  private readonly duration = this.histogram({
    name: 'flush_duration_seconds',
    help: 'Duration of flushes of a Redis buffer to MongoDB run by this worker (its _count: flushes)',
    labelNames: ['collection'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  });
  private readonly fields = this.counter({
    name: 'flush_fields_total',
    help: 'Buffered fields written to MongoDB',
    labelNames: ['collection'],
  });
  private readonly documents = this.counter({
    name: 'flush_documents_total',
    help: 'Documents updated in MongoDB by flushes',
    labelNames: ['collection'],
  });
  private readonly recoveredBatches = this.counter({
    name: 'flush_recovered_batches_total',
    help: 'Batches a dead flusher left claimed, applied by this worker (exactly once)',
    labelNames: ['collection'],
  });
  private readonly deadLetters = this.counter({
    name: 'flush_dead_letters_total',
    help: 'Updates MongoDB refused for good during flushes, set aside as dead letters',
    labelNames: ['collection'],
  });
  private readonly failures = this.counter({
    name: 'flush_failures_total',
    help: 'Flushes that failed (the buffer keeps the data and the next flush retries)',
    labelNames: ['collection'],
  });

  constructor(@Inject(BUFFERED_INCREMENTS_FLUSHERS) flushers: Map<string, BufferedMongoIncrements>) {
    super();
    // Keyed by the buffer's collection (or its namespace when a collection has several buffers).
    const buffers = [...flushers.entries()].map(([name, buffer]) => ({ name, buffer }));
    for (const { name, buffer } of buffers) {
      const collection = { collection: name };
      // Every series exists from the start, so rates and alerts see a 0, not an absent series.
      this.duration.zero(collection);
      for (const metric of [this.fields, this.documents, this.recoveredBatches, this.deadLetters, this.failures])
        metric.inc(collection, 0);
      buffer.on('flush', (report: FlushReport) => {
        this.duration.observe(collection, report.durationMs / 1000);
        this.fields.inc(collection, report.fields);
        this.documents.inc(collection, report.documents);
        this.recoveredBatches.inc(collection, report.recoveredBatches);
        this.deadLetters.inc(collection, report.deadLetters);
      });
      buffer.on('flushError', () => this.failures.inc(collection));
    }
    const stats = this.oncePerScrape(() =>
      Promise.all(
        buffers.map(async ({ name, buffer }) => ({ name, stats: await buffer.stats().catch(() => undefined) })),
      ),
    );
    this.gauge({
      name: 'bufferq_buffered_fields',
      help: 'Fields waiting in each Redis buffer for the next flush',
      labelNames: ['collection'],
      async collect() {
        for (const { name, stats: read } of await stats())
          if (read) this.set({ collection: name }, read.bufferedFields);
      },
    });
    this.gauge({
      name: 'bufferq_oldest_pending_age_seconds',
      help: 'Age of the oldest update in each buffer not yet in MongoDB',
      labelNames: ['collection'],
      async collect() {
        for (const { name, stats: read } of await stats())
          if (read) this.set({ collection: name }, read.oldestPendingAgeMs / 1000);
      },
    });
  }
}
