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
});
