import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { REDIS_CLIENT } from '@bufferq/datastores';
import { RedisLike, RedisScript, shardOf } from '@bufferq/redis-scripts';
import { isTimerId } from '../../timer';
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
  /** Timers waiting in the due index, `due` and the timing wheel (not claimed by a worker). */
  scheduled: number;
  /**
   * Of those, timers already due: claimed by no worker yet. Most wait in `due` (claims move wheel timers there
   * before they are due); the wheel holds some only when no claim ran for a while (every worker down).
   */
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
  /** When it fell due (ms): its score in the due index; absent for a lapsed lease claimed again. */
  dueAt?: number;
}

/** A claimed timer handed back to the due index (see DueIndex.giveBack). */
export interface ReturnedTimer {
  id: string;
  claim: string;
  /** When it should run: its run time for an armed one, else now or when MongoDB says. */
  runAt: number;
}

/** A script argument that holds nothing: no staged delivery, no settled entries to forget, no run time. */
const NONE = '';
/** What cancel-timer-8.lua answers. */
const CANCELLED = 'cancelled';
const DELIVERING = 'delivering';
type CancelResult = typeof CANCELLED | typeof DELIVERING;

/**
 * The timing wheel's layout (see schedule-timers-6.lua): buckets of BUCKET_MS; a bucket string is a header
 * (live records, records moved to `due`: 4 bytes each) and records of the id's 12 bytes and a 2-byte offset
 * within the bucket, TOMBSTONE for a cancelled one. A claim moves at most PROMOTE_LIMIT records per shard.
 */
const WHEEL = { BUCKET_MS: 1_000, HEADER_BYTES: 8, RECORD_BYTES: 14, TOMBSTONE: 0xffff, PROMOTE_LIMIT: 2_000 };

const script = (file: string) =>
  new RedisScript(join(__dirname, 'scripts', file), { NONE, CANCELLED, DELIVERING, ...WHEEL });
const SCRIPTS = {
  schedule: script('schedule-timers-6.lua'),
  reschedule: script('reschedule-timers-6.lua'),
  claimDue: script('claim-due-timers-8.lua'),
  takeClaimed: script('take-claimed-timers-3.lua'),
  returnClaimed: script('return-claimed-timers-4.lua'),
  settle: script('settle-timers-6.lua'),
  cancel: script('cancel-timer-8.lua'),
  stats: script('schedule-stats-5.lua'),
};

function checkTimerId(id: string): string {
  if (!isTimerId(id)) throw new Error(`timer id ${JSON.stringify(id)} is not an ObjectId (24 lowercase hex digits)`);
  return id;
}

/** Ids per script call: bounds each script's run; calls sent together still travel in one round trip. */
const CHUNK = 1_000;

/** One shard's part of a call: the shard's keys, its items in input order, and where they were in the input. */
interface ShardGroup<T> {
  keys: TimerKeys;
  items: T[];
  positions: number[];
}

/**
 * The schedule in Redis, spread over TIMERS_DUE_INDEX_SHARDS shards: each shard is the eight keys of
 * `TimerKeys` under one hash tag, and a timer lives in the shard its id hashes to (`shardOf`). Each
 * change to a shard is one script on that shard's keys, so on a Redis Cluster every call stays in one slot,
 * and a call about timers of several shards is one script call per shard, the shards concurrently. A holder
 * sends only what it could take (its claim token still in `claims`): a batch that waited past its lease,
 * whose timers another scheduler re-claimed, sends none of them. It is an index only: MongoDB holds the
 * timers, and the reconciler rebuilds `due` and `staged` from it.
 *
 * Two tiers per shard. A timer due within the reconciler's horizon (two TIMERS_RECONCILE_INTERVAL_MS) is an
 * entry of `due`, where claims, arming and retries work on it. A new timer due later is a 14-byte record in
 * the timing wheel (`wheel` and its bucket strings), about a sixth of a `due` entry's memory, and each claim
 * first moves the wheel's buckets that came within the horizon into `due`. Ids must be ObjectIds (the wheel
 * stores their 12 bytes).
 */
@Injectable()
export class DueIndex {
  /** The keys of each shard, by shard number. */
  readonly shards: readonly TimerKeys[];
  /** Claim tokens: this instance's random prefix and a counter, so no two claims anywhere share one. */
  private readonly claimPrefix = randomBytes(6).toString('base64url');
  private claims = 0;
  /** The shard this instance's next claim starts with: each claim starts one shard further on. */
  private firstClaimShard = 0;
  /**
   * The reconciler's horizon (ms): timers due within it of now are in `due` (the reconciler re-adds them
   * there), later ones may wait in the timing wheel.
   */
  private readonly horizonMs: number;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: RedisLike,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {
    const count = config.TIMERS_DUE_INDEX_SHARDS;
    this.horizonMs = 2 * config.TIMERS_RECONCILE_INTERVAL_MS;
    this.shards = Array.from({ length: count }, (_, shard) => timerKeys(config.TIMERS_REDIS_PREFIX, count, shard));
  }

  /** The keys of the shard that holds the timer `id`. */
  keysOf(id: string): TimerKeys {
    return this.shards[shardOf(id, this.shards.length)];
  }

  /**
   * Schedules new timers (already in MongoDB), staging deliveries that are given. One due more than the
   * reconciler's horizon after `now` goes into the timing wheel, without its staging. A timer that was
   * cancelled, or indexed and claimed by a worker (from a reconciler pass), since it was inserted is left
   * as it is: this write may come late. Returns how many it added.
   */
  async schedule(timers: DueTimer[], now = Date.now()): Promise<number> {
    const wheelAfter = now + this.horizonMs;
    return sum(
      await this.eachShard(
        timers,
        (timer) => timer.id,
        (keys, chunk) => this.runSchedule(keys, NONE, wheelAfter, chunk),
      ),
    );
  }

  /**
   * Schedules another attempt of timers at the given times, unconditionally: a retry after a failed attempt
   * (by the worker holding it), a failed timer sent again by API.
   */
  async reschedule(timers: DueTimer[]): Promise<void> {
    await this.eachShard(
      timers,
      (timer) => timer.id,
      ({ due, leased, staged, settled, armed, claims }, chunk) =>
        SCRIPTS.reschedule.run(this.redis, [due, leased, staged, settled, armed, claims], timerArgs(chunk)),
    );
  }

  /**
   * Re-adds timers the reconciler read from MongoDB (due within its horizon) to `due`, unless they are
   * leased or settled meanwhile, and never to an earlier time than the index already has. Forgets settled
   * entries older than `forgetSettledBefore` in every shard, also those none of these timers live in.
   */
  async reconcile(timers: DueTimer[], forgetSettledBefore: number): Promise<number> {
    const groups = this.groupByShard(timers, (timer) => timer.id);
    const counts = await Promise.all(
      this.shards.map(async (keys, shard) => {
        const group = groups.get(shard)?.items ?? [];
        let added = await this.runSchedule(keys, forgetSettledBefore, NONE, group.slice(0, CHUNK));
        for (let i = CHUNK; i < group.length; i += CHUNK)
          added += await this.runSchedule(keys, NONE, NONE, group.slice(i, i + CHUNK));
        return added;
      }),
    );
    return sum(counts);
  }

  /**
   * Claims up to `limit` timers over all shards: in each shard, after moving the timing wheel's buckets
   * that start within the reconciler's horizon of `now` into `due`, lapsed leases first, then timers due at
   * or before `horizon`, earliest first. Each claimed timer is leased for TIMERS_DELIVERY_LOCK_MS; its holder
   * renews the lease until it settles. One due after `now` is armed (it comes with its `runAt`): its holder
   * sends it when it is due, after `take`, so work that does not depend on the clock is done before the
   * timer falls due.
   *
   * Fair over shards: the limit is split evenly among the shards (the remainder to those first in turn,
   * and each claim starts one shard further on), so a shard with a large backlog takes at most its share
   * while the others have timers to claim. What shards with fewer timers leave unused goes, in further
   * rounds of the same claim, to the shards that filled their share, so the claim still takes up to
   * `limit` timers while any shard has them.
   */
  async claimDue(now: number, limit: number, horizon = now): Promise<ClaimedTimer[]> {
    const claim = `${this.claimPrefix}${(++this.claims).toString(36)}`;
    const count = this.shards.length;
    const first = this.firstClaimShard;
    this.firstClaimShard = (first + 1) % count;
    // Shards that may still hold claimable timers, in this claim's turn order.
    let open = Array.from({ length: count }, (_, i) => (first + i) % count);
    const claimed: ClaimedTimer[] = [];
    while (open.length && claimed.length < limit) {
      const remaining = limit - claimed.length;
      const asked = open
        .map((shard, i) => ({
          shard,
          share: Math.floor(remaining / open.length) + (i < remaining % open.length ? 1 : 0),
        }))
        .filter(({ share }) => share > 0);
      const replies = await Promise.all(
        asked.map(({ shard, share }) => this.claimInShard(this.shards[shard], now, horizon, share, claim)),
      );
      // A shard that returned less than its share has nothing more to claim now; one that was asked for
      // nothing (fewer timers left to claim than open shards) is asked in the next round.
      const exhausted = new Set<number>();
      await Promise.all(
        replies.map(async (timers, i) => {
          const { shard, share } = asked[i];
          if (timers.length < share) exhausted.add(shard);
          const misplaced: ClaimedTimer[] = [];
          for (const timer of timers) (this.keysOf(timer.id) === this.shards[shard] ? claimed : misplaced).push(timer);
          if (misplaced.length) await this.moveToOwnShards(this.shards[shard], misplaced, now);
        }),
      );
      open = open.filter((shard) => !exhausted.has(shard));
    }
    return claimed;
  }

  /**
   * Moves claimed timers from a shard their ids no longer hash to (TIMERS_DUE_INDEX_SHARDS changed) into
   * their own shards: every other operation looks for a timer in its own shard only, so a timer left where
   * it was could never be taken and sent. It is added there due now (or at its armed run time), unless
   * settled or leased there (the reconciler indexed it, and it is being sent, was sent or was cancelled),
   * and without its staging: the old shard's copy may predate a cancel or a delivery whose settled mark is
   * forgotten by now, so delivery reads MongoDB for it first, and sends it only if unfinished and due.
   * Added first, dropped from the old shard second: a failure in between leaves it in the old shard, to be
   * claimed and moved again once this claim's lease lapses.
   */
  private async moveToOwnShards(from: TimerKeys, timers: ClaimedTimer[], now: number): Promise<void> {
    await this.schedule(timers.map(({ id, runAt }) => ({ id, runAt: runAt ?? now })));
    const { due, leased, staged, settled, armed, claims } = from;
    for (let i = 0; i < timers.length; i += CHUNK)
      await SCRIPTS.settle.run(
        this.redis,
        [due, leased, staged, settled, armed, claims],
        [now, ...timers.slice(i, i + CHUNK).map((timer) => timer.id)],
      );
  }

  /**
   * Takes claimed timers right before sending them: for each, whether it may be sent now (its claim still
   * holds it; taken, it is disarmed and its lease renewed) or not (cancelled, handed back, settled, or
   * re-claimed by another scheduler after its lease lapsed). One round trip for the whole group.
   */
  async take(timers: Array<Pick<ClaimedTimer, 'id' | 'claim'>>): Promise<boolean[]> {
    const now = Date.now();
    const taken = new Array<boolean>(timers.length).fill(false);
    const calls: Array<Promise<void>> = [];
    for (const { keys, items, positions } of this.groupByShard(timers, (timer) => timer.id).values()) {
      for (let i = 0; i < items.length; i += CHUNK) {
        const args: Array<string | number> = [now, this.config.TIMERS_DELIVERY_LOCK_MS];
        for (const timer of items.slice(i, i + CHUNK)) args.push(timer.id, timer.claim);
        calls.push(
          SCRIPTS.takeClaimed
            .run<number[]>(this.redis, [keys.leased, keys.armed, keys.claims], args)
            .then((flags) => flags.forEach((flag, j) => (taken[positions[i + j]] = flag === 1))),
        );
      }
    }
    await Promise.all(calls);
    return taken;
  }

  /**
   * Hands claimed timers back to the due index at their run times (a claim that is not carried out),
   * except those cancelled or re-claimed since. Returns how many it handed back.
   */
  async giveBack(timers: ReturnedTimer[]): Promise<number> {
    const returned = await this.eachShard(
      timers,
      (timer) => timer.id,
      ({ due, leased, armed, claims }, chunk) => {
        const args: Array<string | number> = [];
        for (const timer of chunk) args.push(timer.runAt, timer.id, timer.claim);
        return SCRIPTS.returnClaimed.run<number>(this.redis, [due, leased, armed, claims], args);
      },
    );
    return sum(returned);
  }

  /** Extends the leases of timers this process still holds (only those still leased). */
  async renewLeases(ids: string[], now = Date.now()): Promise<void> {
    const until = now + this.config.TIMERS_DELIVERY_LOCK_MS;
    await this.eachShard(
      ids,
      (id) => id,
      (keys, chunk) => {
        const args: Array<string | number> = [];
        for (const id of chunk) args.push(until, id);
        return this.redis.zadd(keys.leased, 'XX', 'GT', ...(args as [number, string]));
      },
    );
  }

  /** Takes finished timers out of the schedule (after MongoDB recorded why they finished). */
  async settle(ids: string[], now = Date.now()): Promise<void> {
    await this.eachShard(
      ids,
      (id) => id,
      ({ due, leased, staged, settled, armed, claims }, chunk) =>
        SCRIPTS.settle.run(this.redis, [due, leased, staged, settled, armed, claims], [now, ...chunk]),
    );
  }

  /**
   * Takes a pending timer out of the schedule; 'delivering' when it is due at or before `now` or a worker
   * is sending it (then it stays scheduled). A timer claimed ahead of its run time is still cancelled.
   * `runAt` is its run time as MongoDB has it: a timer still in the timing wheel is found by it (without it
   * only `due` is searched, and a wheel record left there relies on the settled mark, which is forgotten
   * after two reconciler periods).
   */
  async cancel(id: string, now = Date.now(), runAt?: number): Promise<CancelResult> {
    const { due, leased, staged, settled, armed, claims, wheel, wheeled } = this.keysOf(checkTimerId(id));
    return SCRIPTS.cancel.run<CancelResult>(
      this.redis,
      [due, leased, staged, settled, armed, claims, wheel, wheeled],
      [now, id, runAt ?? NONE],
    );
  }

  /** Pending timers in the due index and the timing wheel (claimed ones excluded), over all shards. */
  async size(): Promise<number> {
    const perShard = await Promise.all(
      this.shards.map(async ({ due, wheeled }) => {
        const [inDue, inWheel] = await Promise.all([this.redis.zcard(due), this.redis.get(wheeled)]);
        return inDue + Number(inWheel ?? 0);
      }),
    );
    return sum(perShard);
  }

  /** How many timers wait, are overdue, claimed and armed over all shards: one round trip per shard, concurrently. */
  async stats(now = Date.now()): Promise<ScheduleStats> {
    const perShard = await Promise.all(this.shards.map((keys) => this.shardStats(keys, now)));
    const earliestRunAt = Math.min(now, ...perShard.map((shard) => shard.earliestRunAt));
    return {
      scheduled: sum(perShard.map((shard) => shard.scheduled)),
      overdue: sum(perShard.map((shard) => shard.overdue)),
      oldestOverdueMs: Math.max(0, now - earliestRunAt),
      claimed: sum(perShard.map((shard) => shard.claimed)),
      armed: sum(perShard.map((shard) => shard.armed)),
    };
  }

  /** schedule-stats-5.lua on one shard. */
  private async shardStats(keys: TimerKeys, now: number) {
    const { due, leased, armed, wheel, wheeled } = keys;
    const [scheduled, overdue, earliest, claimed, armedCount] = await SCRIPTS.stats.run<number[]>(
      this.redis,
      [due, leased, armed, wheel, wheeled],
      [now],
    );
    return { scheduled, overdue, earliestRunAt: earliest >= 0 ? earliest : now, claimed, armed: armedCount };
  }

  /** claim-due-timers-8.lua on one shard. */
  private async claimInShard(
    keys: TimerKeys,
    now: number,
    horizon: number,
    limit: number,
    claim: string,
  ): Promise<ClaimedTimer[]> {
    const { due, leased, staged, settled, armed, claims, wheel, wheeled } = keys;
    const flat = await SCRIPTS.claimDue.run<Array<string | null>>(
      this.redis,
      [due, leased, staged, settled, armed, claims, wheel, wheeled],
      [now, Math.max(now, horizon), limit, this.config.TIMERS_DELIVERY_LOCK_MS, claim, now + this.horizonMs],
    );
    const claimed: ClaimedTimer[] = [];
    for (let i = 0; i < flat.length; i += 4) {
      const stagedDelivery = flat[i + 1];
      const runAt = flat[i + 2];
      const dueAt = flat[i + 3];
      claimed.push({
        id: flat[i]!,
        claim,
        staged: stagedDelivery ? (JSON.parse(stagedDelivery) as StagedDelivery) : undefined,
        ...(runAt ? { runAt: Number(runAt) } : {}),
        ...(dueAt ? { dueAt: Number(dueAt) } : {}),
      });
    }
    return claimed;
  }

  /**
   * schedule-timers-6.lua on one shard: `forgetSettledBefore` (ms) or NONE; `wheelAfter`: timers whose wheel
   * bucket starts after it (ms) go into the wheel, NONE: all into `due`; then the timers.
   */
  private runSchedule(
    keys: TimerKeys,
    forgetSettledBefore: number | typeof NONE,
    wheelAfter: number | typeof NONE,
    timers: DueTimer[],
  ): Promise<number> {
    const { due, leased, staged, settled, wheel, wheeled } = keys;
    return SCRIPTS.schedule.run<number>(
      this.redis,
      [due, leased, staged, settled, wheel, wheeled],
      [forgetSettledBefore, wheelAfter, ...timerArgs(timers)],
    );
  }

  /** The items by shard number, in input order within each shard; only shards that hold some of them. */
  private groupByShard<T>(items: readonly T[], idOf: (item: T) => string): Map<number, ShardGroup<T>> {
    const groups = new Map<number, ShardGroup<T>>();
    items.forEach((item, position) => {
      const shard = shardOf(checkTimerId(idOf(item)), this.shards.length);
      let group = groups.get(shard);
      if (!group) groups.set(shard, (group = { keys: this.shards[shard], items: [], positions: [] }));
      group.items.push(item);
      group.positions.push(position);
    });
    return groups;
  }

  /**
   * Runs `call` on each shard's share of `items`, in chunks of CHUNK one after another within a shard, the
   * shards concurrently; returns every call's result.
   */
  private async eachShard<T, R>(
    items: readonly T[],
    idOf: (item: T) => string,
    call: (keys: TimerKeys, chunk: T[]) => Promise<R>,
  ): Promise<R[]> {
    const perShard = await Promise.all(
      [...this.groupByShard(items, idOf).values()].map(async ({ keys, items: group }) => {
        const results: R[] = [];
        for (let i = 0; i < group.length; i += CHUNK) results.push(await call(keys, group.slice(i, i + CHUNK)));
        return results;
      }),
    );
    return perShard.flat();
  }
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

function timerArgs(timers: DueTimer[]): Array<string | number> {
  const args: Array<string | number> = [];
  for (const timer of timers) args.push(timer.runAt, timer.id, timer.staged ? JSON.stringify(timer.staged) : NONE);
  return args;
}
