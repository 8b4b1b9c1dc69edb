import { Injectable } from '@nestjs/common';
import { BufferedMongoIncrements, InjectBufferedIncrements } from '@bufferq/buffered-increments';
import { CapabilityMetrics } from '@bufferq/operations';
import { COUNTERS_COLLECTION } from './counters.constants';

/**
 * The counters' metrics in the api: increments accepted, and what waits in the counters' buffer, read
 * at scrape time (the flushes themselves are counted by the worker that runs them, CountersFlushMetrics).
 */
@Injectable()
export class CountersMetrics extends CapabilityMetrics {
  readonly incrementsAccepted = this.counter({
    name: 'counters_increments_accepted_total',
    help: 'Counter increments accepted (durable in Redis)',
  });

  constructor(@InjectBufferedIncrements(COUNTERS_COLLECTION) counters: BufferedMongoIncrements) {
    super();
    const stats = this.oncePerScrape(() => counters.stats());
    this.gauge({
      name: 'counters_buffered_fields',
      help: 'Counter fields waiting in Redis for the next flush',
      async collect() {
        this.set((await stats()).bufferedFields);
      },
    });
    this.gauge({
      name: 'counters_oldest_pending_age_seconds',
      help: 'Age of the oldest counter increment not yet in MongoDB',
      async collect() {
        this.set((await stats()).oldestPendingAgeMs / 1000);
      },
    });
    this.gauge({
      name: 'bufferq_dead_letters',
      help: 'Buffered updates MongoDB refused for good (e.g. $inc on a string), kept for replay or drop',
      labelNames: ['collection'],
      async collect() {
        this.set({ collection: COUNTERS_COLLECTION }, await counters.deadLetterCount());
      },
    });
  }
}
