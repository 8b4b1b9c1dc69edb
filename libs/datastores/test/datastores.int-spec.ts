import { Test } from '@nestjs/testing';
import { Queue, Worker } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { Db } from 'mongodb';
import { validatedEnv } from '@bufferq/config';
import {
  bullmqConnection,
  createRedisClient,
  DatastoresModule,
  MONGO_DB,
  REDIS_CLIENT,
  datastoresEnv,
} from '@bufferq/datastores';
import {
  eventually,
  PrivateRedisCluster,
  proxyClusterNodes,
  redisServersUnderTest,
  startPrivateRedisCluster,
  testServices,
  uniqueName,
} from '@bufferq/testing';
import type { RedisLike } from '@bufferq/redis-scripts';

describe('DatastoresModule', () => {
  it('connects to the real Redis and MongoDB-wire server and closes them on shutdown', async () => {
    const { redisUrl, mongoUrl } = testServices();
    const moduleRef = await Test.createTestingModule({
      imports: [DatastoresModule.forRoot({ redisUrl, mongoUrl, mongoDb: uniqueName('ds') })],
    }).compile();
    const app = await moduleRef.init();
    const redis = app.get<Redis>(REDIS_CLIENT);
    const db = app.get<Db>(MONGO_DB);
    expect(await redis.ping()).toBe('PONG');
    await db.collection('probe').insertOne({ _id: 'x' as never, n: 1 });
    expect(await db.collection('probe').findOne({ _id: 'x' as never })).toEqual({ _id: 'x', n: 1 });
    await db.dropDatabase();
    await app.close();
    expect(await eventually(() => redis.status === 'end', 2_000)).toBe(true);
  });
});

describe('validatedEnv', () => {
  it('fills documented defaults and names every bad variable', () => {
    const validate = validatedEnv(datastoresEnv);
    expect(validate({})).toEqual({
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_REPLY_TIMEOUT_MS: 10_000,
      MONGO_URL: 'mongodb://127.0.0.1:27017',
      MONGO_DB: 'bufferq',
    });
    expect(() => validate({ REDIS_URL: 'not a url', MONGO_DB: '' })).toThrow(/REDIS_URL.*\n.*MONGO_DB/s);
  });
});

describe('REDIS_CLUSTER_NODES', () => {
  const validate = validatedEnv(datastoresEnv);

  it('reads comma-separated host:port seeds, IPv6 in brackets', () => {
    expect(validate({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-2:7001,[::1]:7002' }).REDIS_CLUSTER_NODES).toEqual([
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(validate({}).REDIS_CLUSTER_NODES).toBeUndefined();
  });

  it('refuses a seed that is not host:port, naming it', () => {
    expect(() => validate({ REDIS_CLUSTER_NODES: '10.0.0.1:7000,redis-2' })).toThrow(
      /REDIS_CLUSTER_NODES: not host:port: redis-2/,
    );
  });
});

describe.each(redisServersUnderTest().map(({ name }) => name))('on a %s Cluster', (server) => {
  let cluster: PrivateRedisCluster;
  const seeds = () => [{ host: '127.0.0.1', port: cluster.nodes[0].port }];

  beforeAll(async () => {
    cluster = await startPrivateRedisCluster({ server });
  });
  afterAll(() => cluster.remove());

  it('gives the process a Cluster client that reaches keys on every node, and closes it on shutdown', async () => {
    const { mongoUrl } = testServices();
    const moduleRef = await Test.createTestingModule({
      imports: [
        DatastoresModule.forRoot({
          redisUrl: 'redis://127.0.0.1:1',
          redisClusterNodes: seeds(),
          mongoUrl,
          mongoDb: uniqueName('ds'),
        }),
      ],
    }).compile();
    const app = await moduleRef.init();
    const redis = app.get<Cluster>(REDIS_CLIENT);
    expect(redis.isCluster).toBe(true);
    // Keys in many slots, so every master serves some of them.
    const keys = Array.from({ length: 30 }, (_, i) => uniqueName(`k${i}`));
    await Promise.all(keys.map((key, i) => redis.set(key, String(i))));
    expect(await Promise.all(keys.map((key) => redis.get(key)))).toEqual(keys.map((_, i) => String(i)));
    await app.get<Db>(MONGO_DB).dropDatabase();
    await app.close();
    expect(await eventually(() => redis.status === 'end', 2_000)).toBe(true);
  });

  it('runs BullMQ queues and workers on the Cluster with a hash-tagged queue name, each closing its connections', async () => {
    const probes = cluster.nodes.map((node) => new Redis(node.port));
    const connectedClients = async () =>
      (
        await Promise.all(
          probes.map(
            async (probe) =>
              String(await probe.client('LIST'))
                .trim()
                .split('\n').length,
          ),
        )
      ).reduce((a, b) => a + b, 0);
    const before = await connectedClients();
    const connection = bullmqConnection({ clusterNodes: seeds() });
    const name = `{${uniqueName('cluster-queue')}}`;
    const queue = new Queue(name, { connection });
    const done: number[] = [];
    const worker = new Worker(name, async (job) => done.push(job.data.n), { connection });
    await Promise.all(Array.from({ length: 20 }, (_, n) => queue.add('job', { n })));
    expect(await eventually(() => done.length === 20, 10_000)).toBe(true);
    expect(await connectedClients()).toBeGreaterThan(before);
    await worker.close();
    await queue.close();
    expect(await eventually(async () => (await connectedClients()) === before, 5_000)).toBe(true);
    await Promise.all(probes.map((probe) => probe.quit()));
  });

  it('closes a node connection gone silent, so its calls are sent again and run once; all nodes silent: calls fail, none hangs', async () => {
    // Every node announces a fault proxy in front of it, so clients reach each node through one.
    const { proxies, seeds, restore } = await proxyClusterNodes(cluster);
    const clients: RedisLike[] = [];
    const connect = async (port: number) => {
      const client = createRedisClient(
        { clusterNodes: [{ host: '127.0.0.1', port }], replyTimeoutMs: 300 },
        { lazyConnect: true },
      );
      clients.push(client);
      await client.connect();
      return client;
    };
    const settledWithin = async <T>(calls: Array<Promise<T>>, ms: number) => {
      const settled = Promise.allSettled(calls);
      const late = new Promise<never>((_, reject) => setTimeout(reject, ms, new Error(`not settled within ${ms} ms`)));
      return Promise.race([settled, late]);
    };
    try {
      const client = await connect(seeds[0].port);
      // Keys in many slots: some on every node.
      const keys = Array.from({ length: 30 }, (_, i) => uniqueName(`silent${i}`));
      await Promise.all(keys.map((key) => client.set(key, '10')));

      // One node's open connection goes silent: nothing sent on it reaches the node (new connections work).
      proxies[1].silenceAll();
      const once = await settledWithin(
        keys.map((key) => client.incr(key)),
        5_000,
      );
      expect(once.map((result) => (result.status === 'fulfilled' ? result.value : result.reason))).toEqual(
        keys.map(() => 11),
      );

      // Every node's connections go silent: the client has no node left and fails the calls (no offline
      // queue) instead of waiting; a call that failed did not run.
      for (const proxy of proxies) proxy.silenceAll();
      const outcomes = await settledWithin(
        keys.map((key) => client.incr(key)),
        5_000,
      );
      await restore();
      const direct = await connect(cluster.nodes[0].port);
      const values = await Promise.all(keys.map((key) => direct.get(key)));
      expect(values).toEqual(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? '12' : '11')));
    } finally {
      for (const client of clients) client.disconnect();
      await restore();
    }
  });
});
