import { Inject, Injectable } from '@nestjs/common';
import { BufferedMongoIncrements, InjectBufferedIncrements } from '@bufferq/buffered-increments';
import { CapabilityHealth, HealthCheckFailed } from '@bufferq/operations';
import { COUNTERS_CONFIG, CountersConfig } from './counters.config';
import { COUNTERS_COLLECTION } from './counters.constants';

/**
 * The `flush` check: the oldest unflushed counter increment is younger than READY_MAX_FLUSH_LAG_MS, so
 * a worker is flushing. Down, the api still takes increments (they wait in Redis).
 */
@Injectable()
export class CountersFlushHealth extends CapabilityHealth {
  readonly check = 'flush';
  private readonly maxFlushLagMs: number;

  constructor(
    @InjectBufferedIncrements(COUNTERS_COLLECTION) private readonly counters: BufferedMongoIncrements,
    @Inject(COUNTERS_CONFIG) config: CountersConfig,
  ) {
    super();
    this.maxFlushLagMs = config.READY_MAX_FLUSH_LAG_MS;
  }

  async probe(): Promise<Record<string, unknown>> {
    const { oldestPendingAgeMs, bufferedFields } = await this.counters.stats();
    const details = { oldestPendingAgeMs, bufferedFields, maxFlushLagMs: this.maxFlushLagMs };
    if (oldestPendingAgeMs > this.maxFlushLagMs) throw new HealthCheckFailed('flush lag over its bound', details);
    return details;
  }
}
