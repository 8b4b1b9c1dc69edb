import { Inject, Injectable } from '@nestjs/common';
import { RateLimitRedis } from '../access/rate-limit-redis';
import { OPERATIONS_CONFIG, OperationsConfig } from '../operations.config';

const KEY_PREFIX = 'board-login-failures:';

/**
 * Failed dashboard logins per client address, counted in Redis so the bound holds across api replicas:
 * after BOARD_LOGIN_MAX_FAILURES failures in a window (fixed, from the first failure) the address is
 * refused until the window ends, with the right password too, so guessing cannot go on at full speed.
 */
@Injectable()
export class BoardLoginFailures {
  private readonly maxFailures: number;
  private readonly windowMs: number;

  constructor(
    private readonly rateLimitRedis: RateLimitRedis,
    @Inject(OPERATIONS_CONFIG) config: OperationsConfig,
  ) {
    this.maxFailures = config.BOARD_LOGIN_MAX_FAILURES;
    this.windowMs = config.BOARD_LOGIN_WINDOW_MS;
  }

  /** How long the address stays refused; 0 when it may try. */
  async refusedForMs(clientAddress: string): Promise<number> {
    const key = KEY_PREFIX + clientAddress;
    const [failures, ttlMs] = repliesOf(await this.rateLimitRedis.client.multi().get(key).pttl(key).exec());
    return Number(failures ?? 0) >= this.maxFailures ? Math.max(Number(ttlMs), 1) : 0;
  }

  async recordFailure(clientAddress: string): Promise<void> {
    const key = KEY_PREFIX + clientAddress;
    repliesOf(await this.rateLimitRedis.client.multi().set(key, 0, 'PX', this.windowMs, 'NX').incr(key).exec());
  }
}

function repliesOf(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (!results) throw new Error('the login failure count transaction was aborted');
  return results.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}
