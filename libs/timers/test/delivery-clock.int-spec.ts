import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { LocalServer, sleep, startPrivateRedis, testServices, uniqueName } from '@bufferq/testing';
import { DeliveryClock } from '../src/delivery/delivery-clock';
import { DueIndex } from '../src/storage/due-index/due-index';
import { fastTimersConfig } from './fixtures/timers-harness';

/** Timer `i`'s id: the due index takes ObjectIds (24 hex digits). */
const timerId = (i: number) => i.toString(16).padStart(24, '0');

/** Timers armed in `dueIndex`, due `offsets` ms from now: what a scheduler claims ahead of their time. */
async function armTimers(dueIndex: DueIndex, offsets: number[]) {
  const now = Date.now();
  const timers = offsets.map((offset, i) => ({
    id: timerId(i),
    runAt: now + offset,
    staged: { url: 'http://receiver.test/hook', attempts: 0 },
  }));
  await dueIndex.schedule(timers);
  const claimed = await dueIndex.claimDue(Date.now(), 100, now + 10_000);
  expect(claimed.map((timer) => [timer.id, timer.runAt])).toEqual(
    [...timers].sort((a, b) => a.runAt - b.runAt).map((timer) => [timer.id, timer.runAt]),
  );
  return timers.map(({ id, runAt }) => ({
    id,
    runAt,
    claim: claimed.find((timer) => timer.id === id)!.claim,
  }));
}

describe('DeliveryClock (armed timers, real Redis)', () => {
  const { redisUrl } = testServices();
  const clients: Redis[] = [];
  // The clock logs each failed confirmation; these tests provoke them.
  beforeAll(() => Logger.overrideLogger(false));
  const clockOn = (redis: Redis) => {
    clients.push(redis);
    const dueIndex = new DueIndex(redis, fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('tclock') }));
    return { dueIndex, clock: new DeliveryClock(dueIndex) };
  };
  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
  });

  it('fires armed timers at their run times, in order, and not one cancelled meanwhile', async () => {
    const { dueIndex, clock } = clockOn(new Redis(redisUrl));
    const timers = await armTimers(dueIndex, [300, 150, 300, 200]);
    expect(await dueIndex.cancel(timerId(3))).toBe('cancelled');

    const fired: Array<{ id: string; at: number }> = [];
    const whenDue = clock.whenDue(timers, (id) => fired.push({ id, at: Date.now() }));
    expect(clock.size).toBe(4);
    expect(await whenDue).toEqual([timerId(3)]);
    expect(fired.map((firing) => firing.id)).toEqual([timerId(1), timerId(0), timerId(2)]);
    for (const firing of fired) expect(firing.at).toBeGreaterThanOrEqual(timers.find((t) => t.id === firing.id)!.runAt);
    expect(clock.size).toBe(0);
    // Fired timers are no longer armed: a cancel now finds them being delivered.
    expect(await dueIndex.cancel(timerId(0))).toBe('delivering');
  });

  it('holds armed timers while Redis cannot confirm them and fires each once when Redis is back', async () => {
    const server: LocalServer = await startPrivateRedis({ appendOnly: true });
    try {
      const { dueIndex, clock } = clockOn(new Redis(server.url, { maxRetriesPerRequest: 1 }));
      const timers = await armTimers(dueIndex, [200, 250]);
      await server.stop();
      const fired: string[] = [];
      const whenDue = clock.whenDue(timers, (id) => fired.push(id));
      await sleep(1_000);
      expect(fired).toEqual([]);
      expect(clock.size).toBe(2);

      await server.start();
      expect(await whenDue).toEqual([]);
      expect(fired).toEqual([timerId(0), timerId(1)]);
    } finally {
      await server.remove();
    }
  });

  it('gives up, while the process stops, armed timers that Redis cannot confirm (their leases lapse)', async () => {
    const server: LocalServer = await startPrivateRedis();
    try {
      const { dueIndex, clock } = clockOn(new Redis(server.url, { maxRetriesPerRequest: 1 }));
      const timers = await armTimers(dueIndex, [100]);
      await server.stop();
      clock.close();
      const fired: string[] = [];
      expect(await clock.whenDue(timers, (id) => fired.push(id))).toEqual([timerId(0)]);
      expect(fired).toEqual([]);
    } finally {
      await server.remove();
    }
  });
});
