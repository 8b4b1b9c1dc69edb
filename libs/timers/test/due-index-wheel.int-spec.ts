// The timing wheel: timers due beyond the reconciler's horizon wait as 14-byte records in per-second bucket
// strings and are moved into `due` by the claims as their buckets come within the horizon. Against real
// Redis (and Valkey when the run has one), then end to end with a worker and a local receiver.
import { Redis } from 'ioredis';
import { ObjectId } from 'mongodb';
import { eventually, redisServersUnderTest, sleep, testServices, uniqueName, WebhookReceiver } from '@bufferq/testing';
import { ClaimedTimer, DueIndex } from '../src/storage/due-index/due-index';
import { fastTimersConfig, startTimers, TimersContext } from './fixtures/timers-harness';

const newTimerId = () => new ObjectId().toHexString();
/** The reconciler period of these tests; the horizon, beyond which new timers go into the wheel, is twice it. */
const PERIOD_MS = 5_000;
const HORIZON_MS = 2 * PERIOD_MS;

describe.each(redisServersUnderTest())('DueIndex timing wheel ($name)', ({ url }) => {
  const redis = new Redis(url);
  const racer = new Redis(url);
  afterAll(async () => {
    await redis.quit();
    await racer.quit();
  });
  const settings = (name: string, overrides: Parameters<typeof fastTimersConfig>[0] = {}) =>
    fastTimersConfig({
      TIMERS_REDIS_PREFIX: uniqueName(name),
      TIMERS_RECONCILE_INTERVAL_MS: String(PERIOD_MS),
      ...overrides,
    });
  /** The wheel's bucket strings that exist, over every shard. */
  const bucketKeys = async (dueIndex: DueIndex) =>
    (await Promise.all(dueIndex.shards.map((keys) => redis.keys(`${keys.wheel}:*`)))).flat();
  /** Claims with `claim` until a claim returns none; every timer claimed. */
  const claimAll = async (claim: () => Promise<ClaimedTimer[]>) => {
    const claimed: ClaimedTimer[] = [];
    for (let batch = await claim(); batch.length; batch = await claim()) claimed.push(...batch);
    return claimed;
  };

  it.each([1, 3])(
    'keeps timers due beyond the horizon in the wheel and moves them into due, to the ms, when a claim comes within the horizon of their bucket (%i shard(s))',
    async (shards) => {
      const dueIndex = new DueIndex(redis, settings('twheel', { TIMERS_DUE_INDEX_SHARDS: String(shards) }));
      const now = Date.now();
      const first = Math.ceil((now + HORIZON_MS + 60_000) / 1000) * 1000;
      // 300 timers over three buckets, plus one near timer.
      const far = Array.from({ length: 300 }, (_, i) => ({ id: newTimerId(), runAt: first + i * 10 + (i % 7) }));
      const near = { id: newTimerId(), runAt: now + 1_000 };
      expect(await dueIndex.schedule([...far, near], now)).toBe(301);

      expect(await Promise.all(dueIndex.shards.map((keys) => redis.zcard(keys.due)))).toEqual(
        dueIndex.shards.map((keys) => (keys === dueIndex.keysOf(near.id) ? 1 : 0)),
      );
      expect(await dueIndex.size()).toBe(301);
      expect(await dueIndex.stats(now)).toMatchObject({ scheduled: 301, overdue: 0 });
      expect((await bucketKeys(dueIndex)).length).toBe(3 * shards);

      // Claims before the buckets come within the horizon move nothing.
      expect((await dueIndex.claimDue(first - HORIZON_MS - 1, 1_000)).map((timer) => timer.id)).toEqual([near.id]);
      await dueIndex.settle([near.id]);
      expect(await dueIndex.size()).toBe(300);
      // Within the horizon of the first bucket: that bucket moves, none of its timers is due yet.
      expect(await dueIndex.claimDue(first - HORIZON_MS, 1_000)).toEqual([]);
      const firstBucket = far.filter((timer) => timer.runAt < first + 1_000);
      const inDue = async () =>
        (await Promise.all(dueIndex.shards.map((keys) => redis.zrange(keys.due, 0, -1, 'WITHSCORES')))).flat().length /
        2;
      expect(await inDue()).toBe(firstBucket.length);
      expect(await dueIndex.size()).toBe(300);
      expect((await bucketKeys(dueIndex)).length).toBe(2 * shards);

      // Each claimed when due, with its exact run time.
      const claimed = await claimAll(() => dueIndex.claimDue(first + 3_000, 1_000));
      expect(claimed.map((timer) => [timer.id, timer.dueAt]).sort()).toEqual(
        far.map((timer) => [timer.id, timer.runAt]).sort(),
      );
      expect(await dueIndex.size()).toBe(0);
      expect(await bucketKeys(dueIndex)).toEqual([]);
      for (const keys of dueIndex.shards) {
        expect(await redis.zcard(keys.wheel)).toBe(0);
        expect(Number(await redis.get(keys.wheeled))).toBe(0);
      }
    },
  );

  it('never claims a far timer cancelled before its bucket moved, and leaves the others of its bucket', async () => {
    const dueIndex = new DueIndex(redis, settings('twcancel'));
    const now = Date.now();
    const bucketStart = Math.ceil((now + HORIZON_MS + 60_000) / 1000) * 1000;
    const timers = Array.from({ length: 50 }, (_, i) => ({ id: newTimerId(), runAt: bucketStart + i * 19 }));
    await dueIndex.schedule(timers, now);
    const cancelled = [timers[0], timers[17], timers[49]];
    for (const timer of cancelled) expect(await dueIndex.cancel(timer.id, now, timer.runAt)).toBe('cancelled');
    // A second cancel finds its record already a tombstone: the count does not drop twice.
    expect(await dueIndex.cancel(timers[17].id, now, timers[17].runAt)).toBe('cancelled');
    expect(await dueIndex.size()).toBe(47);
    // Days later: reconciler passes forgot the settled marks long ago; the tombstones are what is left.
    await dueIndex.reconcile([], now + 1);

    const claimed = await claimAll(() => dueIndex.claimDue(bucketStart + 1_000, 100));
    const cancelledIds = new Set(cancelled.map((timer) => timer.id));
    expect(claimed.map((timer) => timer.id).sort()).toEqual(
      timers
        .filter((timer) => !cancelledIds.has(timer.id))
        .map((timer) => timer.id)
        .sort(),
    );
    expect(await dueIndex.size()).toBe(0);
  });

  it.each([1, 3])(
    'counts wheel timers whose time passed while no claim ran as overdue, from the most overdue (%i shard(s))',
    async (shards) => {
      const dueIndex = new DueIndex(redis, settings('twstats', { TIMERS_DUE_INDEX_SHARDS: String(shards) }));
      const now = Date.now();
      const first = Math.ceil((now + HORIZON_MS + 60_000) / 1000) * 1000;
      // Five buckets of 40 timers, 25 ms apart; the earliest of all sits at offset 7 of the first bucket.
      const timers = Array.from({ length: 200 }, (_, i) => ({ id: newTimerId(), runAt: first + 7 + i * 25 }));
      await dueIndex.schedule(timers, now);
      const cancelled = [timers[0], timers[41], timers[150]];
      for (const timer of cancelled) await dueIndex.cancel(timer.id, now, timer.runAt);

      // Halfway through the third bucket (2,500 ms after the first started): the first two buckets wholly,
      // the third up to `later`. Nothing was claimed, so all of them are still in the wheel.
      const later = first + 2_500;
      const overdueTimers = timers.filter((timer) => timer.runAt <= later && !cancelled.includes(timer));
      expect(overdueTimers.length).toBe(100 - 2);
      expect(await dueIndex.stats(later)).toEqual({
        scheduled: 200 - cancelled.length,
        overdue: overdueTimers.length,
        oldestOverdueMs: later - timers[1].runAt,
        claimed: 0,
        armed: 0,
      });
      expect(await dueIndex.stats(now)).toMatchObject({ overdue: 0, oldestOverdueMs: 0 });

      // Once a claim moved the first bucket into `due`, its timers are counted there, and only once.
      expect(await dueIndex.claimDue(first - HORIZON_MS, 10)).toEqual([]);
      expect(await Promise.all(dueIndex.shards.map((keys) => redis.zcard(keys.due)))).not.toEqual(
        dueIndex.shards.map(() => 0),
      );
      expect(await dueIndex.stats(later)).toMatchObject({
        overdue: overdueTimers.length,
        oldestOverdueMs: later - timers[1].runAt,
      });
    },
  );

  it('deletes a bucket once every timer in it is cancelled', async () => {
    const dueIndex = new DueIndex(redis, settings('twempty'));
    const now = Date.now();
    const bucketStart = Math.ceil((now + HORIZON_MS + 60_000) / 1000) * 1000;
    const timers = [0, 500, 999].map((offset) => ({ id: newTimerId(), runAt: bucketStart + offset }));
    await dueIndex.schedule(timers, now);
    for (const timer of timers) await dueIndex.cancel(timer.id, now, timer.runAt);
    expect(await bucketKeys(dueIndex)).toEqual([]);
    expect(await redis.zcard(dueIndex.shards[0].wheel)).toBe(0);
    expect(await dueIndex.size()).toBe(0);
  });

  it('answers "delivering" to a cancel of a wheel timer whose run time has passed (not moved yet: no claim ran)', async () => {
    const dueIndex = new DueIndex(redis, settings('twlate'));
    const now = Date.now();
    const timer = { id: newTimerId(), runAt: Math.ceil((now + HORIZON_MS + 60_000) / 1000) * 1000 + 10 };
    await dueIndex.schedule([timer], now);
    expect(await dueIndex.cancel(timer.id, timer.runAt, timer.runAt)).toBe('delivering');
    expect((await dueIndex.claimDue(timer.runAt, 10)).map((claimed) => claimed.id)).toEqual([timer.id]);
  });

  it('is exact when cancels race the claims moving their buckets: a timer is either cancelled or sent once', async () => {
    // Cancels on another connection, so the server interleaves them with the claims as they arrive;
    // 9,000 timers take several claims to move (PROMOTE_LIMIT records per claim).
    const config = settings('twrace');
    const mover = new DueIndex(redis, config);
    const canceller = new DueIndex(racer, config);
    const now = Date.now();
    const first = Math.ceil((now + HORIZON_MS + 60_000) / 1000) * 1000;
    const timers = Array.from({ length: 9_000 }, (_, i) => ({ id: newTimerId(), runAt: first + (i % 3_000) }));
    await mover.schedule(timers, now);
    const toCancel = timers.filter((_, i) => i % 7 === 0);
    const moving = (async () => {
      // Within the horizon of every bucket, none due yet: the claims only move records into `due`. The
      // settled marks of the cancels are forgotten at once (as days of reconciler passes would).
      for (let i = 0; i < 20; i++) {
        await mover.reconcile([], now + 1);
        await mover.claimDue(first - 1, 10);
        await sleep(1);
      }
    })();
    const answers = await Promise.all(toCancel.map((timer) => canceller.cancel(timer.id, now, timer.runAt)));
    await moving;
    expect(answers.every((answer) => answer === 'cancelled')).toBe(true);
    expect(await redis.zcard(mover.shards[0].wheel)).toBe(0);

    const claimed = await claimAll(() => mover.claimDue(first + 3_000, 1_000));
    const sent = claimed;
    const taken = await mover.take(sent);
    const cancelledIds = new Set(toCancel.map((timer) => timer.id));
    expect(taken.every(Boolean)).toBe(true);
    expect(sent.map((timer) => timer.id).sort()).toEqual(
      timers
        .filter((timer) => !cancelledIds.has(timer.id))
        .map((timer) => timer.id)
        .sort(),
    );
    expect(await mover.size()).toBe(0);
  });

  it('moves wheel timers of a shard their ids no longer hash to (3 shards to 4) into their own shards', async () => {
    const threeShards = settings('twreshard', { TIMERS_DUE_INDEX_SHARDS: '3' });
    const now = Date.now();
    const runAt = Math.ceil((now + HORIZON_MS + 60_000) / 1000) * 1000 + 250;
    const ids = Array.from({ length: 300 }, newTimerId);
    await new DueIndex(redis, threeShards).schedule(
      ids.map((id) => ({ id, runAt })),
      now,
    );
    const fourShards = new DueIndex(redis, { ...threeShards, TIMERS_DUE_INDEX_SHARDS: 4 });
    const claimed = await claimAll(() => fourShards.claimDue(runAt, 1_000));
    expect(claimed.map((timer) => timer.id).sort()).toEqual([...ids].sort());
    expect((await fourShards.take(claimed)).every(Boolean)).toBe(true);
    for (const keys of fourShards.shards) {
      const leased = await redis.zrange(keys.leased, 0, -1);
      expect(leased.every((id) => fourShards.keysOf(id) === keys)).toBe(true);
      expect(await redis.zcard(keys.wheel)).toBe(0);
    }
    expect(await fourShards.stats(runAt)).toMatchObject({ scheduled: 0, claimed: 300 });
  });

  it('takes less than 40 bytes of Redis per far timer (100 timers a second, 8.6 million a day)', async () => {
    const dueIndex = new DueIndex(redis, settings('twmemory'));
    const now = Date.now();
    const first = Math.ceil((now + HORIZON_MS + 60_000) / 1000) * 1000;
    const timers = Array.from({ length: 5_000 }, (_, i) => ({
      id: newTimerId(),
      runAt: first + Math.floor(i / 100) * 1_000 + Math.floor(Math.random() * 1_000),
    }));
    // In creation order, as the api writes them: in batches, each batch across the buckets.
    timers.sort(() => Math.random() - 0.5);
    for (let i = 0; i < timers.length; i += 500) await dueIndex.schedule(timers.slice(i, i + 500), now);
    const { wheel, wheeled, due } = dueIndex.shards[0];
    expect(await redis.zcard(due)).toBe(0);
    const keys = [wheel, wheeled, ...(await bucketKeys(dueIndex))];
    expect(keys.length).toBe(52);
    const bytes = (await Promise.all(keys.map((key) => redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')))).map(
      Number,
    );
    const perTimer = bytes.reduce((a, b) => a + b) / timers.length;
    expect(perTimer).toBeLessThan(40);
  });

  it('refuses ids that are not ObjectIds, which the wheel could not store', async () => {
    const dueIndex = new DueIndex(redis, settings('twids'));
    await expect(dueIndex.schedule([{ id: 'timer-1', runAt: Date.now() }])).rejects.toThrow(/not an ObjectId/);
    await expect(dueIndex.cancel(newTimerId().toUpperCase())).rejects.toThrow(/not an ObjectId/);
  });
});

describe('far timers end to end (worker, MongoDB-wire server, local receiver)', () => {
  const { redisUrl, mongoUrl } = testServices();
  let receiver: WebhookReceiver;
  let ctx: TimersContext;
  // Horizon 600 ms: a timer due in 2 s or more is created into the wheel.
  const config = fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('twe2e') });

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    ctx = await startTimers({ redisUrl, mongoUrl, mongoDb: uniqueName('timers_wheel'), config, worker: true });
  });
  afterAll(async () => {
    await ctx.db.dropDatabase();
    await ctx.close();
    await receiver.stop();
  });

  it('delivers far timers at their time, and never one cancelled while it waited in the wheel', async () => {
    const keys = ctx.app.get(DueIndex).shards[0];
    const createdAt = Date.now();
    // One createMany: the same run time, so the same bucket.
    const ids = await ctx.timers.createMany(
      Array.from({ length: 4 }, () => ({ hours: 0, minutes: 0, seconds: 3, url: `${receiver.url}/far` })),
    );
    expect(Number(await ctx.redis.get(keys.wheeled))).toBe(4);
    expect(await ctx.redis.zcard(keys.due)).toBe(0);
    expect(await ctx.timers.cancel(ids[1])).toMatchObject({ status: 'cancelled' });
    expect(Number(await ctx.redis.get(keys.wheeled))).toBe(3);

    const delivered = [ids[0], ids[2], ids[3]];
    expect(await eventually(() => delivered.every((id) => receiver.requestsFor(`/far/${id}`).length > 0), 8_000)).toBe(
      true,
    );
    for (const id of delivered) {
      const { due_at: dueAt } = await ctx.timers.get(id);
      const [request] = receiver.requestsFor(`/far/${id}`);
      expect(request.at).toBeGreaterThanOrEqual(Date.parse(dueAt));
      expect(request.at - Date.parse(dueAt)).toBeLessThan(1_000);
      expect(request.at - createdAt).toBeGreaterThanOrEqual(3_000);
    }
    await sleep(500);
    expect(receiver.requestsFor(`/far/${ids[1]}`)).toEqual([]);
    expect(delivered.map((id) => receiver.requestsFor(`/far/${id}`).length)).toEqual([1, 1, 1]);
    expect((await ctx.timers.get(ids[1])).status).toBe('cancelled');
  });
});
