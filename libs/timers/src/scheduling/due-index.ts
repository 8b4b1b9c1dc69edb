import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { REDIS_CLIENT } from '@bufferq/datastores';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';

/**
 * What a worker needs to send a timer's next attempt without asking MongoDB: staged in Redis only for
 * timers due soon (see DueIndex), so the far-future schedule stays one sorted-set entry per timer.
 */
export interface StagedDelivery {
  url: string;
  /** Attempts recorded before this one. */
  attempts: number;
}

/** What the schedule holds right now (see DueIndex.stats). */
export interface ScheduleStats {
  /** Timers waiting in the due index (not claimed by a worker). */
  scheduled: number;
  /** Of those, timers already due: claimed by no worker yet. */
  overdue: number;
  /** How long the most overdue of them has been due (0 when none is). */
  oldestOverdueMs: number;
  /** Timers claimed by a worker: being sent, their outcome being recorded, or armed. */
  claimed: number;
  /** Claimed timers held for their run time (armed) and not fired yet. */
  armed: number;
}

/** A timer attempt to schedule: the timer id, when the attempt should run (ms), and maybe its delivery. */
export interface DueTimer {
  id: string;
  runAt: number;
  staged?: StagedDelivery;
}

/** A timer a scheduler claimed for delivery; `staged` is absent when it was not staged in Redis. */
export interface ClaimedTimer {
  id: string;
  staged?: StagedDelivery;
  /**
   * Set when the timer was claimed ahead of its run time (armed, see DueIndex.claimDue): it is sent at
   * this time (ms) and only after DueIndex.takeArmed confirms it was not cancelled meanwhile.
   */
  runAt?: number;
}

type CancelResult = 'cancelled' | 'delivering';

const script = (name: string) => readFileSync(join(__dirname, `${name}.lua`), 'utf8');

type RedisWithTimerScripts = Redis & {
  claimDueTimers(...args: Array<string | number>): Promise<Array<string | null>>;
  takeArmedTimers(...args: string[]): Promise<number[]>;
  indexTimers(...args: Array<string | number>): Promise<number>;
  reconcileTimers(...args: Array<string | number>): Promise<number>;
  settleTimers(...args: Array<string | number>): Promise<number>;
  cancelTimer(...args: Array<string | number>): Promise<CancelResult>;
};

const SCRIPTS: Record<string, string> = {
  claimDueTimers: 'claim-due-timers',
  takeArmedTimers: 'take-armed-timers',
  indexTimers: 'index-timers',
  reconcileTimers: 'reconcile-timers',
  settleTimers: 'settle-timers',
  cancelTimer: 'cancel-timer',
};

/**
 * The schedule in Redis, five keys under `<TIMERS_REDIS_PREFIX>:`:
 * - `due`: sorted set, member = timer id (24 characters), score = next attempt time in ms;
 * - `leased`: sorted set of timers claimed for delivery, score = when the claim lapses unless renewed;
 * - `staged`: hash id -> JSON { url, attempts } for timers due soon, so delivery needs no MongoDB read;
 * - `settled`: sorted set of timers finished recently (score = when), which the reconciler must not re-add;
 * - `armed`: sorted set of leased timers claimed ahead of their run time (score = run time) and not fired
 *   yet: cancelling one disarms it, and its holder fires it only if it is still armed.
 * It is an index only: MongoDB holds the timers, and the reconciler rebuilds `due` and `staged` from it.
 */
@Injectable()
export class DueIndex {
  readonly key: string;
  private readonly keys: string[];
  private readonly redis: RedisWithTimerScripts;

  constructor(
    @Inject(REDIS_CLIENT) redis: Redis,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {
    const prefix = config.TIMERS_REDIS_PREFIX;
    this.key = `${prefix}:due`;
    this.keys = [
      this.key,
      `${prefix}:leased`,
      `${prefix}:staged`,
      `${prefix}:settled`,
      `${prefix}:armed`,
    ];
    for (const [command, file] of Object.entries(SCRIPTS)) {
      if (!(command in redis)) redis.defineCommand(command, { numberOfKeys: 5, lua: script(file) });
    }
    this.redis = redis as RedisWithTimerScripts;
  }

  /** Schedules attempts at the given times (new timers, retries), staging deliveries that are given. */
  async add(timers: DueTimer[]): Promise<void> {
    if (!timers.length) return;
    await this.redis.indexTimers(...this.keys, ...timerArgs(timers));
  }

  /**
   * Re-adds timers the reconciler read from MongoDB, unless they are leased or settled meanwhile, and never
   * to an earlier time than the index already has. Forgets settled entries older than `forgetSettledBefore`.
   */
  reconcile(timers: DueTimer[], forgetSettledBefore: number): Promise<number> {
    return this.redis.reconcileTimers(...this.keys, forgetSettledBefore, ...timerArgs(timers));
  }

  /**
   * Claims up to `limit` timers: lapsed leases first, then timers due at or before `horizon`, earliest
   * first. Each claimed timer is leased for TIMERS_DELIVERY_LOCK_MS; its holder renews the lease until it
   * settles. One due after `now` is armed (it comes with its `runAt`): its holder sends it when it is due,
   * after `takeArmed`, so work that does not depend on the clock is done before the timer falls due.
   */
  async claimDue(now: number, limit: number, horizon = now): Promise<ClaimedTimer[]> {
    const flat = await this.redis.claimDueTimers(
      ...this.keys,
      now,
      Math.max(now, horizon),
      limit,
      this.config.TIMERS_DELIVERY_LOCK_MS,
    );
    const claimed: ClaimedTimer[] = [];
    for (let i = 0; i < flat.length; i += 3) {
      const staged = flat[i + 1];
      const runAt = flat[i + 2];
      claimed.push({
        id: flat[i]!,
        staged: staged ? (JSON.parse(staged) as StagedDelivery) : undefined,
        ...(runAt ? { runAt: Number(runAt) } : {}),
      });
    }
    return claimed;
  }

  /**
   * Fires armed timers that are due: for each id, whether it may be sent now (it was still armed, and is
   * not any more) or not (cancelled, or re-claimed after its lease lapsed, since it was claimed).
   */
  async takeArmed(ids: string[]): Promise<boolean[]> {
    // Chunks bound each script's run; sent together they travel in one round trip, answers in order.
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += 1_000) chunks.push(ids.slice(i, i + 1_000));
    const answers = await Promise.all(
      chunks.map((chunk) => this.redis.takeArmedTimers(...this.keys, ...chunk)),
    );
    return answers.flat().map((flag) => flag === 1);
  }

  /** Extends the leases of timers this process still holds (only those still leased). */
  async renewLeases(ids: string[], now = Date.now()): Promise<void> {
    const until = now + this.config.TIMERS_DELIVERY_LOCK_MS;
    for (let i = 0; i < ids.length; i += 1_000) {
      const args: Array<string | number> = [];
      for (const id of ids.slice(i, i + 1_000)) args.push(until, id);
      await this.redis.zadd(this.keys[1], 'XX', 'GT', ...(args as [number, string]));
    }
  }

  /** Takes finished timers out of the schedule (after MongoDB recorded why they finished). */
  async settle(ids: string[], now = Date.now()): Promise<void> {
    for (let i = 0; i < ids.length; i += 1_000)
      await this.redis.settleTimers(...this.keys, now, ...ids.slice(i, i + 1_000));
  }

  /**
   * Takes a pending timer out of the schedule; 'delivering' when it is due at or before `now` or a worker
   * is sending it (then it stays scheduled). A timer claimed ahead of its run time is still cancelled.
   */
  cancel(id: string, now = Date.now()): Promise<CancelResult> {
    return this.redis.cancelTimer(...this.keys, now, id);
  }

  /** Pending timers in the due index (claimed ones excluded). */
  size(): Promise<number> {
    return this.redis.zcard(this.key);
  }

  /** How many timers wait, are overdue, claimed and armed, read in one round trip. */
  async stats(now = Date.now()): Promise<ScheduleStats> {
    const [due, leased, , , armed] = this.keys;
    const replies = await this.redis
      .multi()
      .zcard(due)
      .zcount(due, '-inf', now)
      .zrange(due, 0, 0, 'WITHSCORES')
      .zcard(leased)
      .zcard(armed)
      .exec();
    const [scheduled, overdue, earliest, claimed, armedCount] = (replies ?? []).map(
      ([error, value]) => {
        if (error) throw error;
        return value;
      },
    ) as [number, number, string[], number, number];
    const earliestRunAt = earliest.length ? Number(earliest[1]) : now;
    return {
      scheduled,
      overdue,
      oldestOverdueMs: Math.max(0, now - earliestRunAt),
      claimed,
      armed: armedCount,
    };
  }
}

function timerArgs(timers: DueTimer[]): Array<string | number> {
  const args: Array<string | number> = [];
  for (const timer of timers)
    args.push(timer.runAt, timer.id, timer.staged ? JSON.stringify(timer.staged) : '');
  return args;
}
