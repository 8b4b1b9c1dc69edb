import { Redis } from 'ioredis';
import { LocalServer, sleep, startPrivateRedis } from '@bufferq/testing';
import { SilentConnectionWatchdog } from '@bufferq/redis-scripts';

// What finding a silent connection costs a client: one PING per quarter of the shortest timeout, however
// many buffers and modules watch that client, and nothing once they all stopped. (Reconnecting a silent
// connection is provoked through a fault proxy in the buffer's and the api's specs.)
describe('SilentConnectionWatchdog (a private Redis)', () => {
  let server: LocalServer;
  let admin: Redis;
  let watched: Redis;

  beforeAll(async () => {
    server = await startPrivateRedis();
    admin = new Redis(server.url);
    watched = new Redis(server.url);
    await watched.ping();
  });
  afterAll(async () => {
    watched.disconnect();
    await admin.quit();
    await server.remove();
  });

  const pingsDuring = async (ms: number) => {
    await admin.config('RESETSTAT');
    await sleep(ms);
    const stats = await admin.info('commandstats');
    return Number(/cmdstat_ping:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  };

  it('sends one PING per quarter of the shortest timeout for all the watches of a client, none once they stopped', async () => {
    const stops = [400, 400, 400, 400, 4_000].map((timeoutMs) =>
      SilentConnectionWatchdog.watch(watched, timeoutMs, () => undefined),
    );
    // Every 100 ms: about 10 a second (one watchdog per watch would send about 50).
    const pings = await pingsDuring(1_000);
    expect(pings).toBeGreaterThanOrEqual(5);
    expect(pings).toBeLessThanOrEqual(15);

    for (const stop of stops.slice(0, 4)) stop();
    // The 4 s watch alone: every second.
    expect(await pingsDuring(1_100)).toBeLessThanOrEqual(2);
    stops[4]();
    await sleep(100);
    expect(await pingsDuring(600)).toBe(0);
  });
});
