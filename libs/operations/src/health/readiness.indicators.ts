import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import type { Db } from 'mongodb';
import { CountersService } from '@bufferq/counters';
import { MONGO_DB, REDIS_CLIENT } from '@bufferq/datastores';
import type { OperationsEnv } from '../operations.env';

const PING_TIMEOUT_MS = 2_000;

/** What `/health/ready` checks: both datastores answer, and the flush keeps up. */
@Injectable()
export class ReadinessIndicators {
  private readonly maxFlushLagMs: number;

  constructor(
    private readonly health: HealthIndicatorService,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(MONGO_DB) private readonly db: Db,
    private readonly counters: CountersService,
    config: ConfigService<OperationsEnv, true>,
  ) {
    this.maxFlushLagMs = config.get('READY_MAX_FLUSH_LAG_MS', { infer: true });
  }

  redisAnswers(): Promise<HealthIndicatorResult> {
    return this.probe('redis', async () => ({ reply: await this.redis.ping() }));
  }

  mongoAnswers(): Promise<HealthIndicatorResult> {
    return this.probe('mongodb', async () => {
      await this.db.command({ ping: 1 });
      return {};
    });
  }

  /** The oldest unflushed increment is younger than READY_MAX_FLUSH_LAG_MS: a worker is flushing. */
  flushKeepsUp(): Promise<HealthIndicatorResult> {
    return this.probe('flush', async () => {
      const { oldestPendingAgeMs, bufferedFields } = await this.counters.stats();
      const details = { oldestPendingAgeMs, bufferedFields, maxFlushLagMs: this.maxFlushLagMs };
      if (oldestPendingAgeMs > this.maxFlushLagMs) throw Object.assign(new Error('flush lag over its bound'), { details });
      return details;
    });
  }

  private async probe(key: string, check: () => Promise<Record<string, unknown>>): Promise<HealthIndicatorResult> {
    const indicator = this.health.check(key);
    try {
      return indicator.up(await withTimeout(check(), PING_TIMEOUT_MS));
    } catch (error) {
      const details = (error as { details?: Record<string, unknown> }).details ?? {};
      return indicator.down({ message: error instanceof Error ? error.message : String(error), ...details });
    }
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
