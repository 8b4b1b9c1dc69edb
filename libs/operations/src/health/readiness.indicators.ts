import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { Redis } from 'ioredis';
import type { Db } from 'mongodb';
import { MONGO_DB, REDIS_CLIENT } from '@bufferq/datastores';
import { providersOfKind } from '../discovered-providers';
import { CapabilityHealth, HealthCheckFailed } from './capability-health';

const PING_TIMEOUT_MS = 2_000;

type CheckResult = HealthIndicatorResult[string];

/**
 * `/health/ready`'s answer. Only what increments need decides `status` (the api takes writes while
 * Redis answers): `info` and `error` hold those checks. `details` holds every check, also MongoDB and
 * the capabilities' (e.g. the flush lag), which an operator must see but which must not take the api out
 * of rotation.
 */
export interface ReadinessReport {
  status: 'ok' | 'error';
  info: Record<string, CheckResult>;
  error: Record<string, CheckResult>;
  details: Record<string, CheckResult>;
}

/** Checks that decide readiness; the others are reported only. */
const REQUIRED_CHECKS = new Set(['redis']);

/**
 * What `/health/ready` and the `health_check_up` gauge report: Redis, MongoDB, and the check of every
 * CapabilityHealth provider of the app.
 */
@Injectable()
export class ReadinessIndicators implements OnApplicationBootstrap {
  private capabilityChecks: CapabilityHealth[] = [];

  constructor(
    private readonly health: HealthIndicatorService,
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(MONGO_DB) private readonly db: Db,
    private readonly discovery: DiscoveryService,
  ) {}

  onApplicationBootstrap(): void {
    this.capabilityChecks = providersOfKind(this.discovery, CapabilityHealth);
  }

  async report(): Promise<ReadinessReport> {
    const results = await Promise.all([
      this.redisAnswers(),
      this.mongoAnswers(),
      ...this.capabilityChecks.map((capability) => this.probe(capability.check, () => capability.probe())),
    ]);
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

  private async probe(key: string, check: () => Promise<Record<string, unknown>>): Promise<HealthIndicatorResult> {
    const indicator = this.health.check(key);
    try {
      return indicator.up(await withTimeout(check(), PING_TIMEOUT_MS));
    } catch (error) {
      const details = error instanceof HealthCheckFailed ? error.details : {};
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
