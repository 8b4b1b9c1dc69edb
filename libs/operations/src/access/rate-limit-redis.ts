import { Injectable, Module, OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Redis } from 'ioredis';
import { createRedisClient } from '@bufferq/datastores';

/**
 * The connection rate-limit counts use. Auto-pipelining sends the counts of all requests read in one
 * event-loop turn in one write instead of one write per request (it roughly doubles the throughput of
 * a rate-limited endpoint); it gets its own connection so no other caller's commands change timing.
 */
@Injectable()
export class RateLimitRedis implements OnModuleDestroy {
  readonly client: Redis;

  constructor(config: ConfigService) {
    this.client = createRedisClient(config.getOrThrow<string>('REDIS_URL'), {
      enableAutoPipelining: true,
      connectionName: 'rate-limit',
    });
  }

  onModuleDestroy(): void {
    this.client.disconnect();
  }
}

@Module({ providers: [RateLimitRedis], exports: [RateLimitRedis] })
export class RateLimitRedisModule {}
