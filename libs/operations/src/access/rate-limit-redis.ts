import { Inject, Injectable, Module, OnModuleDestroy } from '@nestjs/common';
import { createRedisClient, REDIS_ENDPOINT, RedisEndpoint } from '@bufferq/datastores';
import type { RedisLike } from '@bufferq/redis-scripts';

/**
 * The connection rate-limit counts use. Auto-pipelining sends the counts of all requests read in one
 * event-loop turn in one write instead of one write per request (it roughly doubles the throughput of
 * a rate-limited endpoint); it gets its own connection so no other caller's commands change timing.
 */
@Injectable()
export class RateLimitRedis implements OnModuleDestroy {
  readonly client: RedisLike;

  constructor(@Inject(REDIS_ENDPOINT) endpoint: RedisEndpoint) {
    this.client = createRedisClient(endpoint, {
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
