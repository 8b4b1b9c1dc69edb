import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import {
  BufferedMongoIncrements,
  BufferStats,
  BufferUnavailableError,
  InjectBufferedIncrements,
} from '@bufferq/buffered-increments';
import { REDIS_CLIENT } from '@bufferq/datastores';
import { COUNTER_VALUE_FIELD, COUNTERS_COLLECTION } from './counters.constants';
import { CountersMetrics } from './counters.metrics';

export interface CounterIncrement {
  key: string;
  value: number;
}

/** Counters buffered in Redis by the core library and flushed to MongoDB by the worker's `flush` role. */
@Injectable()
export class CountersService {
  constructor(
    @InjectBufferedIncrements(COUNTERS_COLLECTION) private readonly counters: BufferedMongoIncrements,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    private readonly metrics: CountersMetrics,
  ) {}

  /**
   * Resolves once every increment is durable in Redis. A batch is buffered whole or not at all: one
   * refused increment (e.g. an overflowing sum) refuses the request, and nothing of it is recorded.
   */
  async increment(increments: CounterIncrement[]): Promise<void> {
    if (increments.length === 1)
      await this.counters.increment(increments[0].key, COUNTER_VALUE_FIELD, increments[0].value);
    else
      await this.counters.incrementAll(
        increments.map(({ key, value }) => ({ documentId: key, fieldPath: COUNTER_VALUE_FIELD, delta: value })),
      );
    this.metrics.incrementsAccepted.inc(increments.length);
  }

  /** MongoDB's value plus what is still buffered: a client reads its own writes at once. Unknown key: 0. */
  async read(key: string): Promise<number | bigint> {
    try {
      // Exact past 2^53 (a bigint then): counters are Int64 in MongoDB.
      return await this.counters.readIncrementedExact(key, COUNTER_VALUE_FIELD);
    } catch (error) {
      // The buffered part cannot be read while Redis is away: say so (503), never answer a partial sum.
      if (this.redis.status !== 'ready')
        throw new BufferUnavailableError(`Redis is not connected (${this.redis.status})`, { cause: error });
      throw error;
    }
  }

  stats(): Promise<BufferStats> {
    return this.counters.stats();
  }
}
