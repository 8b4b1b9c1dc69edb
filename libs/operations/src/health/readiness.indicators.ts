import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import type { Db } from 'mongodb';
import { CountersService } from '@bufferq/counters';
import { MONGO_DB, REDIS_CLIENT } from '@bufferq/datastores';
import type { OperationsEnv } from '../operations.env';
import { reportHealthInMetrics } from './health.metrics';

const PING_TIMEOUT_MS = 2_000;

type CheckResult = HealthIndicatorResult[string];

/**
 * `/health/ready`'s answer. Only what increments need decides `status` (the api takes writes while
 * Redis answers): `info` and `error` hold those checks. `details` holds every check, also MongoDB and
 * the flush lag, which an operator must see but which must not take the api out of rotation.
 */
export interface ReadinessReport {
  status: 'ok' | 'error';
  info: Record<string, CheckResult>;
  error: Record<string, CheckResult>;
  details: Record<string, CheckResult>;
}

/** Checks that decide readiness; the others are reported only. */
const REQUIRED_CHECKS = new Set(['redis']);

/** What `/health/ready` and the `health_check_up` gauge report: Redis, MongoDB and whether the flush keeps up. */
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
    reportHealthInMetrics(() => this.report());
  }

  async report(): Promise<ReadinessReport> {
    const results = await Promise.all([this.redisAnswers(), this.mongoAnswers(), this.flushKeepsUp()]);
    const report: ReadinessReport = { status: 'ok', info: {}, error: {}, details: Object.assign({}, ...results) };
    for (const [check, result] of Object.entries(report.details)) {
      if (!REQUIRED_CHECKS.has(check)) continue;
      if (result.status === 'up') report.info[check] = result;
      else {
        report.error[check] = result;
        report.status = 'error';
      }
    }
    return report;
  }

  private redisAnswers(): Promise<HealthIndicatorResult> {
    return this.probe('redis', async () => ({ reply: await this.redis.ping() }));
  }

  private mongoAnswers(): Promise<HealthIndicatorResult> {
    return this.probe('mongodb', async () => {
      await this.db.command({ ping: 1 });
      return {};
    });
  }

  /** The oldest unflushed increment is younger than READY_MAX_FLUSH_LAG_MS: a worker is flushing. */
  private flushKeepsUp(): Promise<HealthIndicatorResult> {
    return this.probe('flush', async () => {
      const { oldestPendingAgeMs, bufferedFields } = await this.counters.stats();
      const details = { oldestPendingAgeMs, bufferedFields, maxFlushLagMs: this.maxFlushLagMs };
      if (oldestPendingAgeMs > this.maxFlushLagMs)
        throw Object.assign(new Error('flush lag over its bound'), { details });
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
