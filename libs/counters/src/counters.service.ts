import { Injectable } from '@nestjs/common';
import { BufferedMongoIncrements, BufferStats, InjectBufferedIncrements } from '@bufferq/buffered-increments';
import { COUNTER_VALUE_FIELD, COUNTERS_COLLECTION } from './counters.constants';
import { counterMetrics } from './counters.metrics';

export interface CounterIncrement {
  key: string;
  value: number;
}

/** Counters buffered in Redis by the core library and flushed to MongoDB by the worker's `flush` role. */
@Injectable()
export class CountersService {
  private readonly metrics = counterMetrics(() => this.stats());

  constructor(@InjectBufferedIncrements(COUNTERS_COLLECTION) private readonly counters: BufferedMongoIncrements) {}

  /**
   * Resolves once every increment is durable in Redis. Increments of one call are buffered
   * concurrently; if Redis fails midway some may be buffered and the call rejects (see the README).
   */
  async increment(increments: CounterIncrement[]): Promise<void> {
    await Promise.all(increments.map(({ key, value }) => this.counters.increment(key, COUNTER_VALUE_FIELD, value)));
    this.metrics.incrementsAccepted.inc(increments.length);
  }

  /** MongoDB's value plus what is still buffered: a client reads its own writes at once. Unknown key: 0. */
  read(key: string): Promise<number> {
    return this.counters.readIncremented(key, COUNTER_VALUE_FIELD);
  }

  stats(): Promise<BufferStats> {
    return this.counters.stats();
  }
}
