import { Module } from '@nestjs/common';
import { APP_GUARD, DiscoveryModule } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { ThrottlerModule } from '@nestjs/throttler';
import { ApiKeyGuard } from './access/api-key.guard';
import { ClientThrottlerGuard } from './access/client-throttler.guard';
import { FailOpenThrottlerStorage } from './access/fail-open-throttler-storage';
import { LeasedRateLimitStorage } from './access/leased-rate-limit-storage';
import { RateLimitRedis, RateLimitRedisModule } from './access/rate-limit-redis';
import { BoardLoginFailures } from './board/board-login-failures';
import { QueueBoard } from './board/queue-board';
import { HealthController } from './health/health.controller';
import { ReadinessMetrics } from './health/health.metrics';
import { ReadinessIndicators } from './health/readiness.indicators';
import { HttpHooks } from './metrics/http-hooks';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsModule } from './metrics/metrics.module';
import { OPERATIONS_CONFIG, OperationsConfig, OperationsConfigModule } from './operations.config';
import { QueueErrorLog } from './queue-error-log';

/**
 * Health, metrics (what the app's capabilities declare, see CapabilityMetrics / CapabilityHealth), API keys, rate limits and the queue dashboard for the api app. Guards run in the
 * order listed: the API key is checked before the request counts against a client's rate limit.
 * Rate limits and dashboard logins count per client address (`request.ip`): the socket's, or what a
 * proxy listed in TRUST_PROXY says (the api builds its Fastify adapter with that setting).
 */
@Module({
  imports: [
    DiscoveryModule,
    TerminusModule,
    MetricsModule,
    RateLimitRedisModule,
    OperationsConfigModule,
    ThrottlerModule.forRootAsync({
      imports: [RateLimitRedisModule, OperationsConfigModule],
      inject: [OPERATIONS_CONFIG, RateLimitRedis],
      useFactory: (config: OperationsConfig, { client: redis }: RateLimitRedis) => {
        const limit = config.RATE_LIMIT_MAX;
        return {
          throttlers: [{ ttl: config.RATE_LIMIT_WINDOW_MS, limit }],
          // Counted in Redis, so the limit holds across api replicas; spent from in-process leases.
          storage: new FailOpenThrottlerStorage(new LeasedRateLimitStorage(redis)),
          skipIf: () => limit === 0,
        };
      },
    }),
  ],
  controllers: [HealthController, MetricsController],
  providers: [
    ReadinessIndicators,
    ReadinessMetrics,
    HttpHooks,
    BoardLoginFailures,
    QueueBoard,
    QueueErrorLog,
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    { provide: APP_GUARD, useClass: ClientThrottlerGuard },
  ],
})
export class OperationsModule {}
