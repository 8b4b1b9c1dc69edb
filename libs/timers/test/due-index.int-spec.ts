import { Redis } from 'ioredis';
import { ObjectId } from 'mongodb';
import { testServices, uniqueName } from '@bufferq/testing';
import { DueIndex } from '../src/storage/due-index/due-index';
import { fastTimersConfig } from './fixtures/timers-harness';

/** Fresh timer ids (ObjectIds, as the due index requires), by name. */
const timerIds = <Name extends string>(...names: Name[]) =>
  Object.fromEntries(names.map((name) => [name, new ObjectId().toHexString()])) as Record<Name, string>;

// One shard (the default) and three shards of one Redis: the same guarantees either way.
describe.each([1, 3])('DueIndex (real Redis, %i shard(s))', (shards) => {
  const redis = new Redis(testServices().redisUrl);
  afterAll(() => redis.quit());
  const settings = (overrides: Parameters<typeof fastTimersConfig>[0]) =>
    fastTimersConfig({ TIMERS_DUE_INDEX_SHARDS: String(shards), ...overrides });

  it('tells when each claimed timer fell due (overdue and armed alike), but not for a lapsed lease claimed again', async () => {
    const dueIndex = new DueIndex(
      redis,
      settings({ TIMERS_REDIS_PREFIX: uniqueName('tdue'), TIMERS_DELIVERY_LOCK_MS: '1000' }),
    );
    const now = Date.now();
    const { late, soon } = timerIds('late', 'soon');
    await dueIndex.schedule([
      { id: late, runAt: now - 2_000 },
      { id: soon, runAt: now + 400 },
    ]);
    const claimed = await dueIndex.claimDue(now, 10, now + 1_000);
    const byId = (id: string) => claimed.find((timer) => timer.id === id)!;
    expect(byId(late)).toMatchObject({ dueAt: now - 2_000 });
    expect(byId(late).runAt).toBeUndefined();
    expect(byId(soon)).toMatchObject({ dueAt: now + 400, runAt: now + 400 });
    const reclaimed = await dueIndex.claimDue(now + 1_001, 10);
    expect(reclaimed.map((timer) => timer.id).sort()).toEqual([late, soon].sort());
    expect(reclaimed.every((timer) => timer.dueAt === undefined)).toBe(true);
  });

  it('counts scheduled, overdue (with the oldest one’s age), claimed and armed timers', async () => {
    const dueIndex = new DueIndex(redis, settings({ TIMERS_REDIS_PREFIX: uniqueName('tstats') }));
    const now = Date.now();
    const ids = [-5_000, -1_000, 500, 3_600_000, 7_200_000].map(() => new ObjectId().toHexString());
    // The two far ones wait in the timing wheel: counted as scheduled all the same.
    await dueIndex.schedule(
      [-5_000, -1_000, 500, 3_600_000, 7_200_000].map((offset, i) => ({ id: ids[i], runAt: now + offset })),
      now,
    );
    expect(await dueIndex.stats(now)).toEqual({
      scheduled: 5,
      overdue: 2,
      oldestOverdueMs: 5_000,
      claimed: 0,
      armed: 0,
    });

    // Earliest first within a shard: the most overdue timer goes first unless another shard's turn came.
    const [first] = await dueIndex.claimDue(now, 1);
    if (dueIndex.keysOf(ids[0]) === dueIndex.keysOf(ids[1])) expect(first.id).toBe(ids[0]);
    expect(await dueIndex.stats(now)).toEqual({
      scheduled: 4,
      overdue: 1,
      oldestOverdueMs: first.id === ids[0] ? 1_000 : 5_000,
      claimed: 1,
      armed: 0,
    });

    // The other overdue timer and, claimed ahead, the one due in 500 ms (armed).
    await dueIndex.claimDue(now, 10, now + 1_000);
    expect(await dueIndex.stats(now)).toEqual({
      scheduled: 2,
      overdue: 0,
      oldestOverdueMs: 0,
      claimed: 3,
      armed: 1,
    });
  });

  it('fires thousands of armed timers in one take, answering in order (a cancelled one: false)', async () => {
    const dueIndex = new DueIndex(redis, settings({ TIMERS_REDIS_PREFIX: uniqueName('ttake') }));
    const now = Date.now();
    const ids = Array.from({ length: 2_500 }, () => new ObjectId().toHexString());
    // Due within the reconciler's horizon (two periods of 300 ms), so in `due`, not in the timing wheel.
    await dueIndex.schedule(ids.map((id) => ({ id, runAt: now + 500 })));
    const claimed = await dueIndex.claimDue(now, 3_000, now + 500);
    expect(claimed.map((timer) => timer.id).sort()).toEqual([...ids].sort());
    expect(await dueIndex.cancel(ids[1700], now)).toBe('cancelled');

    const fire = await dueIndex.take(claimed);
    expect(fire).toEqual(claimed.map((timer) => timer.id !== ids[1700]));
    // Taken once: a second take (say, a second job with the same claim) sends none of them.
    expect((await dueIndex.take(claimed)).some(Boolean)).toBe(false);
  });

  it('lets only the latest claim take a timer whose lease lapsed, and gives back only what a claim still holds', async () => {
    const config = settings({
      TIMERS_REDIS_PREFIX: uniqueName('tclaims'),
      TIMERS_DELIVERY_LOCK_MS: '1000',
    });
    const dueIndex = new DueIndex(redis, config);
    const now = Date.now();
    const { a: aId, b: bId, c: cId } = timerIds('a', 'b', 'c');
    await dueIndex.schedule([aId, bId, cId].map((id) => ({ id, runAt: now })));
    const first = await dueIndex.claimDue(now, 10);
    // The first holder's batch waits past its lease; another scheduler re-claims all three.
    const second = await dueIndex.claimDue(now + 1_001, 10);
    expect(second.map((timer) => timer.id).sort()).toEqual([aId, bId, cId].sort());
    expect(await dueIndex.take(first)).toEqual([false, false, false]);
    expect(await dueIndex.giveBack(first.map((timer) => ({ ...timer, runAt: now })))).toBe(0);
    expect(await dueIndex.size()).toBe(0);

    const [a, b, c] = [aId, bId, cId].map((id) => second.find((timer) => timer.id === id)!);
    expect(await dueIndex.take([a])).toEqual([true]);
    expect(await dueIndex.cancel(bId, now)).toBe('delivering');
    // Handed back at the run time given (an armed timer's own), not now.
    expect(
      await dueIndex.giveBack([
        { ...b, runAt: now + 5_000 },
        { ...a, runAt: now },
      ]),
    ).toBe(1);
    expect(await redis.zscore(dueIndex.keysOf(bId).due, bId)).toBe(String(now + 5_000));
    expect(await redis.zscore(dueIndex.keysOf(aId).due, aId)).toBeNull();
    expect(await dueIndex.take([b, c])).toEqual([false, true]);
  });
});
