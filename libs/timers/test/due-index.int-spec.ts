import { Redis } from 'ioredis';
import { testServices, uniqueName } from '@bufferq/testing';
import { DueIndex } from '../src/scheduling/due-index';
import { fastTimersConfig } from './timers-harness';

describe('DueIndex (real Redis)', () => {
  const redis = new Redis(testServices().redisUrl);
  afterAll(() => redis.quit());

  it('counts scheduled, overdue (with the oldest one’s age), claimed and armed timers', async () => {
    const dueIndex = new DueIndex(
      redis,
      fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('tstats') }),
    );
    const now = Date.now();
    await dueIndex.add(
      [-5_000, -1_000, 500, 3_600_000, 7_200_000].map((offset, i) => ({
        id: `timer-${i}`,
        runAt: now + offset,
      })),
    );
    expect(await dueIndex.stats(now)).toEqual({
      scheduled: 5,
      overdue: 2,
      oldestOverdueMs: 5_000,
      claimed: 0,
      armed: 0,
    });

    await dueIndex.claimDue(now, 1);
    expect(await dueIndex.stats(now)).toEqual({
      scheduled: 4,
      overdue: 1,
      oldestOverdueMs: 1_000,
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
    const dueIndex = new DueIndex(
      redis,
      fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('ttake') }),
    );
    const now = Date.now();
    const ids = Array.from({ length: 2_500 }, (_, i) => `timer-${String(i).padStart(4, '0')}`);
    await dueIndex.add(ids.map((id) => ({ id, runAt: now + 60_000 })));
    expect(await dueIndex.claimDue(now, 3_000, now + 60_000)).toHaveLength(2_500);
    expect(await dueIndex.cancel('timer-1700', now)).toBe('cancelled');

    const fire = await dueIndex.takeArmed(ids);
    expect(fire).toEqual(ids.map((id) => id !== 'timer-1700'));
    // Taken once: a second take finds none of them armed.
    expect((await dueIndex.takeArmed(ids)).some(Boolean)).toBe(false);
  });
});
