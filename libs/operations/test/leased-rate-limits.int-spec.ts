import { Redis } from 'ioredis';
import { sleep, testServices, uniqueName } from '@bufferq/testing';
import { LEASE_SHARE_OF_LIMIT, LeasedRateLimitStorage } from '../src/access/leased-rate-limit-storage';

const { redisUrl } = testServices();

describe('rate limits leased from Redis (two api processes sharing one Redis)', () => {
  const clients: Redis[] = [];
  const connect = () => {
    const redis = new Redis(redisUrl, { enableAutoPipelining: true });
    clients.push(redis);
    return redis;
  };
  // Each storage has its own connection and its own leases, as two api replicas do.
  const twoProcesses = () => [new LeasedRateLimitStorage(connect()), new LeasedRateLimitStorage(connect())];

  afterAll(() => clients.forEach((redis) => redis.disconnect()));

  it('admits a busy client at most the limit per window across both processes, and refuses at most a lease per process short of it', async () => {
    const [first, second] = twoProcesses();
    const reservations = clients.slice(-2).map((redis) => jest.spyOn(redis, 'evalsha'));
    const limit = 20_000;
    const client = uniqueName('busy');
    // Both processes take requests concurrently, in waves, so leases grow while the other reserves too.
    let admitted = 0;
    let refused = 0;
    for (let wave = 0; wave < 60; wave++) {
      const records = await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          (i % 2 === 0 ? first : second).increment(client, 60_000, limit, 60_000, 'default'),
        ),
      );
      for (const record of records)
        if (record.isBlocked) refused++;
        else admitted++;
    }
    expect(admitted + refused).toBe(30_000);
    expect(admitted).toBeLessThanOrEqual(limit);
    expect(admitted).toBeGreaterThanOrEqual(limit - 2 * Math.ceil(limit * LEASE_SHARE_OF_LIMIT));
    // Redis counted exactly the reserved requests: the admitted ones plus what the leases still hold.
    const reserved = Number(await clients[0].get(`{${client}:default}:hits`));
    expect(reserved).toBeLessThanOrEqual(limit);
    expect(reserved).toBeGreaterThanOrEqual(admitted);
    // Most requests were admitted from a lease: far fewer reservations than requests.
    const reserveCalls = reservations.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
    expect(reserveCalls).toBeLessThan(admitted / 20);
    const blocked = await first.increment(client, 60_000, limit, 60_000, 'default');
    expect(blocked.isBlocked).toBe(true);
    expect(blocked.timeToBlockExpire).toBeGreaterThan(0);
  });

  it('answers each request of a slow client from Redis, with the remaining count of both processes', async () => {
    const [first, second] = twoProcesses();
    const client = uniqueName('slow');
    const hit = (storage: LeasedRateLimitStorage) => storage.increment(client, 60_000, 5, 60_000, 'default');
    expect((await hit(first)).totalHits).toBe(1);
    expect((await hit(first)).totalHits).toBe(2);
    expect((await hit(second)).totalHits).toBe(3);
    expect((await hit(first)).totalHits).toBe(4);
    expect((await hit(second)).totalHits).toBe(5);
    const refused = await hit(first);
    expect(refused).toMatchObject({ isBlocked: true });
    expect(refused.timeToBlockExpire).toBeGreaterThan(0);
    expect(await hit(second)).toMatchObject({ isBlocked: true });
  });

  it('admits the client again once its block ends, in a new window', async () => {
    const [first, second] = twoProcesses();
    const client = uniqueName('reset');
    const hit = (storage: LeasedRateLimitStorage) => storage.increment(client, 300, 3, 400, 'default');
    for (let i = 0; i < 3; i++) expect(await hit(i % 2 ? first : second)).toMatchObject({ isBlocked: false });
    expect(await hit(first)).toMatchObject({ isBlocked: true });
    // The window has ended (300 ms) but the block (400 ms) has not: still refused, by both.
    await sleep(320);
    expect(await hit(second)).toMatchObject({ isBlocked: true });
    expect(await hit(first)).toMatchObject({ isBlocked: true });
    await sleep(150);
    expect(await hit(first)).toMatchObject({ isBlocked: false, totalHits: 1 });
    expect(await hit(second)).toMatchObject({ isBlocked: false, totalHits: 2 });
  });

  it('drops what is left of a lease when its window ends, so a new window starts from the limit', async () => {
    const [first] = twoProcesses();
    const client = uniqueName('expiring');
    const limit = 10_000;
    // Grow the lease: 1 + 2 + 4 + ... requests reserved, the last lease only partly used.
    for (let i = 0; i < 40; i++) await first.increment(client, 300, limit, 300, 'default');
    const reserved = Number(await clients[0].get(`{${client}:default}:hits`));
    expect(reserved).toBeGreaterThan(40);
    await sleep(350);
    const record = await first.increment(client, 300, limit, 300, 'default');
    expect(record).toMatchObject({ isBlocked: false, totalHits: 1 });
  });

  it('keeps a client’s counts under one hash tag per client and throttler (one Cluster slot)', async () => {
    const [first] = twoProcesses();
    const client = uniqueName('tagged');
    await first.increment(client, 60_000, 1, 60_000, 'default');
    await first.increment(client, 60_000, 1, 60_000, 'default');
    const keys = (await clients[0].keys(`*${client}*`)).sort();
    expect(keys).toEqual([`{${client}:default}:blocked`, `{${client}:default}:hits`]);
  });
});
