import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { REDIS_CLIENT } from '@bufferq/datastores';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';

/** A timer attempt as the due index holds it: the timer id and when the attempt should run (ms). */
export interface DueTimer {
  id: string;
  runAt: number;
}

const CLAIM_DUE_TIMERS = readFileSync(join(__dirname, 'claim-due-timers.lua'), 'utf8');

type RedisWithTimerScripts = Redis & {
  claimDueTimers(key: string, now: number, limit: number): Promise<string[]>;
};

/**
 * The schedule in Redis: one sorted set, member = timer id (24 characters), score = next attempt time in
 * ms. It is an index only: MongoDB holds the timers, and the reconciler rebuilds this set from it.
 */
@Injectable()
export class DueIndex {
  readonly key: string;
  private readonly redis: RedisWithTimerScripts;

  constructor(@Inject(REDIS_CLIENT) redis: Redis, @Inject(TIMERS_CONFIG) config: TimersConfig) {
    this.key = `${config.TIMERS_REDIS_PREFIX}:due`;
    if (!('claimDueTimers' in redis))
      redis.defineCommand('claimDueTimers', { numberOfKeys: 1, lua: CLAIM_DUE_TIMERS });
    this.redis = redis as RedisWithTimerScripts;
  }

  /**
   * Adds timers, or moves them to the given time. `neverEarlier` keeps a later time already in the index
   * (ZADD GT): the reconciler reads MongoDB before it writes here, and must not undo a retry that a
   * delivery scheduled in between.
   */
  async add(timers: DueTimer[], options: { neverEarlier?: boolean } = {}): Promise<void> {
    if (!timers.length) return;
    const args: Array<string | number> = [];
    for (const timer of timers) args.push(timer.runAt, timer.id);
    if (options.neverEarlier) await this.redis.zadd(this.key, 'GT', ...args);
    else await this.redis.zadd(this.key, ...args);
  }

  /** Removes and returns up to `limit` timers due at or before `now`, earliest first. */
  async claimDue(now: number, limit: number): Promise<DueTimer[]> {
    const flat = await this.redis.claimDueTimers(this.key, now, limit);
    const due: DueTimer[] = [];
    for (let i = 0; i < flat.length; i += 2) due.push({ id: flat[i], runAt: Number(flat[i + 1]) });
    return due;
  }

  async remove(id: string): Promise<void> {
    await this.redis.zrem(this.key, id);
  }

  size(): Promise<number> {
    return this.redis.zcard(this.key);
  }
}
