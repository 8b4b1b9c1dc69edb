import { Cluster, Redis } from 'ioredis';
import { LocalServer, PrivateRedisCluster, sleep, startPrivateRedis, startPrivateRedisCluster } from '@bufferq/testing';
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

describe('SilentConnectionWatchdog on a Cluster client (a private Cluster)', () => {
  let cluster: PrivateRedisCluster;
  let client: Cluster;

  beforeAll(async () => {
    cluster = await startPrivateRedisCluster();
    client = new Cluster([{ host: '127.0.0.1', port: cluster.nodes[0].port }]);
    // Keys in many slots, so the client connects to every node (node connections open on first use).
    await Promise.all(Array.from({ length: 30 }, (_, i) => client.set(`probe${i}`, '1')));
  });
  afterAll(async () => {
    client.disconnect();
    await cluster.remove();
  });

  it('watches every node with one listener per client and node, however many watch it, and removes them with the last watch', async () => {
    const nodes = client.nodes('all');
    expect(nodes.length).toBe(3);
    const listeners = () => [client.listenerCount('+node'), ...nodes.map((node) => node.listenerCount('end'))];
    const before = listeners();
    const stops = Array.from({ length: 12 }, () => SilentConnectionWatchdog.watch(client, 400, () => undefined));
    // One more each (12 buffers on one client would otherwise warn of a listener leak).
    expect(listeners()).toEqual(before.map((count) => count + 1));

    // Each node gets PINGs from one watchdog: about 10 a second (one per 100 ms), not 12 times that.
    const admin = new Redis(cluster.nodes[1].port);
    await admin.config('RESETSTAT');
    await sleep(1_000);
    const pings = Number(/cmdstat_ping:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    await admin.quit();
    expect(pings).toBeGreaterThanOrEqual(5);
    expect(pings).toBeLessThanOrEqual(15);

    for (const stop of stops) stop();
    expect(listeners()).toEqual(before);
  });
});
