import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import { REDIS_CLIENT } from '@bufferq/datastores';
import { RedisScript } from '@bufferq/redis-scripts';
import { TIMERS_CONFIG, TimersConfig } from '../../timers.config';
import { TimerKeys, timerKeys } from './timer-keys';

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
  /**
   * The token of the claim that leased it. Its holder sends it only after `take` finds this token still
   * there: a scheduler that re-claims the timer once its lease lapsed replaces it, and so does a cancel.
   */
  claim: string;
  staged?: StagedDelivery;
  /**
   * Set when the timer was claimed ahead of its run time (armed, see DueIndex.claimDue): it is sent at
   * this time (ms), and only if DueIndex.take then finds it not cancelled meanwhile.
   */
  runAt?: number;
}

/** A claimed timer handed back to the due index (see DueIndex.giveBack). */
export interface ReturnedTimer {
  id: string;
  claim: string;
  /** When it should run: its run time for an armed one, else now or when MongoDB says. */
  runAt: number;
}

/** A script argument that holds nothing: no staged delivery, no settled entries to forget. */
const NONE = '';
/** What cancel-timer-6.lua answers. */
const CANCELLED = 'cancelled';
const DELIVERING = 'delivering';
type CancelResult = typeof CANCELLED | typeof DELIVERING;

const script = (file: string) => new RedisScript(join(__dirname, 'scripts', file), { NONE, CANCELLED, DELIVERING });
const SCRIPTS = {
  schedule: script('schedule-timers-4.lua'),
  reschedule: script('reschedule-timers-6.lua'),
  claimDue: script('claim-due-timers-5.lua'),
  takeClaimed: script('take-claimed-timers-3.lua'),
  returnClaimed: script('return-claimed-timers-4.lua'),
  settle: script('settle-timers-6.lua'),
  cancel: script('cancel-timer-6.lua'),
};

/** Ids per script call: bounds each script's run; calls sent together still travel in one round trip. */
const CHUNK = 1_000;

/**
 * The schedule in Redis: the six keys of `TimerKeys` under `<TIMERS_REDIS_PREFIX>:`, each change to them
 * one script. A holder sends only what it could take (its claim token still in `claims`): a batch that
 * waited past its lease, whose timers another scheduler re-claimed, sends none of them. It is an index
 * only: MongoDB holds the timers, and the reconciler rebuilds `due` and `staged` from it.
 */
@Injectable()
export class DueIndex {
  readonly keys: TimerKeys;
  /** Claim tokens: this instance's random prefix and a counter, so no two claims anywhere share one. */
  private readonly claimPrefix = randomBytes(6).toString('base64url');
  private claims = 0;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {
    this.keys = timerKeys(config.TIMERS_REDIS_PREFIX);
  }

  /**
   * Schedules new timers (already in MongoDB), staging deliveries that are given. A timer that was
   * cancelled, or indexed and claimed by a worker (from a reconciler pass), since it was inserted is left
   * as it is: this write may come late. Returns how many it added.
   */
  async schedule(timers: DueTimer[]): Promise<number> {
    let added = 0;
    for (let i = 0; i < timers.length; i += CHUNK) added += await this.runSchedule(NONE, timers.slice(i, i + CHUNK));
    return added;
  }

  /**
   * Schedules another attempt of timers at the given times, unconditionally: a retry after a failed attempt
   * (by the worker holding it), a failed timer sent again by API.
   */
  async reschedule(timers: DueTimer[]): Promise<void> {
    if (!timers.length) return;
    const { due, leased, staged, settled, armed, claims } = this.keys;
    await SCRIPTS.reschedule.run(this.redis, [due, leased, staged, settled, armed, claims], timerArgs(timers));
  }

  /**
   * Re-adds timers the reconciler read from MongoDB, unless they are leased or settled meanwhile, and never
   * to an earlier time than the index already has. Forgets settled entries older than `forgetSettledBefore`.
   */
  reconcile(timers: DueTimer[], forgetSettledBefore: number): Promise<number> {
    return this.runSchedule(forgetSettledBefore, timers);
  }

  /**
   * Claims up to `limit` timers: lapsed leases first, then timers due at or before `horizon`, earliest
   * first. Each claimed timer is leased for TIMERS_DELIVERY_LOCK_MS; its holder renews the lease until it
   * settles. One due after `now` is armed (it comes with its `runAt`): its holder sends it when it is due,
   * after `take`, so work that does not depend on the clock is done before the timer falls due.
   */
  async claimDue(now: number, limit: number, horizon = now): Promise<ClaimedTimer[]> {
    const claim = `${this.claimPrefix}${(++this.claims).toString(36)}`;
    const { due, leased, staged, armed, claims } = this.keys;
    const flat = await SCRIPTS.claimDue.run<Array<string | null>>(
      this.redis,
      [due, leased, staged, armed, claims],
      [now, Math.max(now, horizon), limit, this.config.TIMERS_DELIVERY_LOCK_MS, claim],
    );
    const claimed: ClaimedTimer[] = [];
    for (let i = 0; i < flat.length; i += 3) {
      const stagedDelivery = flat[i + 1];
      const runAt = flat[i + 2];
      claimed.push({
        id: flat[i]!,
        claim,
        staged: stagedDelivery ? (JSON.parse(stagedDelivery) as StagedDelivery) : undefined,
        ...(runAt ? { runAt: Number(runAt) } : {}),
      });
    }
    return claimed;
  }

  /**
   * Takes claimed timers right before sending them: for each, whether it may be sent now (its claim still
   * holds it; taken, it is disarmed and its lease renewed) or not (cancelled, handed back, settled, or
   * re-claimed by another scheduler after its lease lapsed). One round trip for the whole group.
   */
  async take(timers: Array<Pick<ClaimedTimer, 'id' | 'claim'>>): Promise<boolean[]> {
    const now = Date.now();
    const { leased, armed, claims } = this.keys;
    const calls: Array<Promise<number[]>> = [];
    for (let i = 0; i < timers.length; i += CHUNK) {
      const args: Array<string | number> = [now, this.config.TIMERS_DELIVERY_LOCK_MS];
      for (const timer of timers.slice(i, i + CHUNK)) args.push(timer.id, timer.claim);
      calls.push(SCRIPTS.takeClaimed.run<number[]>(this.redis, [leased, armed, claims], args));
    }
    return (await Promise.all(calls)).flat().map((flag) => flag === 1);
  }

  /**
   * Hands claimed timers back to the due index at their run times (a claim that is not carried out),
   * except those cancelled or re-claimed since. Returns how many it handed back.
   */
  async giveBack(timers: ReturnedTimer[]): Promise<number> {
    const { due, leased, armed, claims } = this.keys;
    let returned = 0;
    for (let i = 0; i < timers.length; i += CHUNK) {
      const args: Array<string | number> = [];
      for (const timer of timers.slice(i, i + CHUNK)) args.push(timer.runAt, timer.id, timer.claim);
      returned += await SCRIPTS.returnClaimed.run<number>(this.redis, [due, leased, armed, claims], args);
    }
    return returned;
  }

  /** Extends the leases of timers this process still holds (only those still leased). */
  async renewLeases(ids: string[], now = Date.now()): Promise<void> {
    const until = now + this.config.TIMERS_DELIVERY_LOCK_MS;
    for (let i = 0; i < ids.length; i += CHUNK) {
      const args: Array<string | number> = [];
      for (const id of ids.slice(i, i + CHUNK)) args.push(until, id);
      await this.redis.zadd(this.keys.leased, 'XX', 'GT', ...(args as [number, string]));
    }
  }

  /** Takes finished timers out of the schedule (after MongoDB recorded why they finished). */
  async settle(ids: string[], now = Date.now()): Promise<void> {
    const { due, leased, staged, settled, armed, claims } = this.keys;
    for (let i = 0; i < ids.length; i += CHUNK)
      await SCRIPTS.settle.run(
        this.redis,
        [due, leased, staged, settled, armed, claims],
        [now, ...ids.slice(i, i + CHUNK)],
      );
  }

  /**
   * Takes a pending timer out of the schedule; 'delivering' when it is due at or before `now` or a worker
   * is sending it (then it stays scheduled). A timer claimed ahead of its run time is still cancelled.
   */
  cancel(id: string, now = Date.now()): Promise<CancelResult> {
    const { due, leased, staged, settled, armed, claims } = this.keys;
    return SCRIPTS.cancel.run<CancelResult>(this.redis, [due, leased, staged, settled, armed, claims], [now, id]);
  }

  /** Pending timers in the due index (claimed ones excluded). */
  size(): Promise<number> {
    return this.redis.zcard(this.keys.due);
  }

  /** How many timers wait, are overdue, claimed and armed, read in one round trip. */
  async stats(now = Date.now()): Promise<ScheduleStats> {
    const { due, leased, armed } = this.keys;
    const replies = await this.redis
      .multi()
      .zcard(due)
      .zcount(due, '-inf', now)
      .zrange(due, 0, 0, 'WITHSCORES')
      .zcard(leased)
      .zcard(armed)
      .exec();
    const [scheduled, overdue, earliest, claimed, armedCount] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    }) as [number, number, string[], number, number];
    const earliestRunAt = earliest.length ? Number(earliest[1]) : now;
    return {
      scheduled,
      overdue,
      oldestOverdueMs: Math.max(0, now - earliestRunAt),
      claimed,
      armed: armedCount,
    };
  }

  /** schedule-timers-4.lua: `forgetSettledBefore` (ms) or NONE, then the timers. */
  private runSchedule(forgetSettledBefore: number | typeof NONE, timers: DueTimer[]): Promise<number> {
    const { due, leased, staged, settled } = this.keys;
    return SCRIPTS.schedule.run<number>(
      this.redis,
      [due, leased, staged, settled],
      [forgetSettledBefore, ...timerArgs(timers)],
    );
  }
}

function timerArgs(timers: DueTimer[]): Array<string | number> {
  const args: Array<string | number> = [];
  for (const timer of timers) args.push(timer.runAt, timer.id, timer.staged ? JSON.stringify(timer.staged) : NONE);
  return args;
}
