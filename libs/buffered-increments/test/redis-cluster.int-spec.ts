import { Cluster } from 'ioredis';
import { MongoClient } from 'mongodb';
import { BufferedMongoIncrements } from '@bufferq/buffered-increments';
import { incrementThroughSilence } from './fixtures/silent-connection';
import { FaultProxy, proxyClusterNodes, startPrivateRedisCluster, testServices, uniqueName } from '@bufferq/testing';

describe('BufferedMongoIncrements on a Redis Cluster', () => {
  const { mongoUrl } = testServices();
  const dbName = uniqueName('bmi_cluster');
  let cluster: Awaited<ReturnType<typeof startPrivateRedisCluster>>;
  let redis: Cluster;
  let mongo: MongoClient;

  beforeAll(async () => {
    cluster = await startPrivateRedisCluster();
    redis = new Cluster(cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })));
    mongo = await new MongoClient(mongoUrl).connect();
  });

  afterAll(async () => {
    await mongo.db(dbName).dropDatabase();
    await mongo.close();
    redis.disconnect();
    await cluster.remove();
  });

  it('buffers and flushes exactly, each collection in its own hash slot, spread over the nodes', async () => {
    const buffers = ['users', 'runs', 'items', 'stores', 'actors', 'tasks'].map(
      (name) =>
        new BufferedMongoIncrements(mongo.db(dbName).collection(name), redis, 60_000, {
          autoFlush: false,
          readChunkSize: 10,
        }),
    );
    for (const buffer of buffers) {
      await Promise.all(Array.from({ length: 60 }, (_, i) => buffer.increment(`doc-${i % 20}`, 'n', i)));
      await buffer.max('doc-0', 'lastAt', new Date('2026-05-01T00:00:00Z'));
    }
    // The namespaces hash to slots owned by more than one node: this really exercises the Cluster.
    const ranges = await redis.cluster('SLOTS');
    const ownerOf = (slot: number) => ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
    const owners = new Set(
      await Promise.all(
        buffers.map(async (buffer) => ownerOf((await redis.cluster('KEYSLOT', `{${buffer.namespace}}`)) as number)),
      ),
    );
    expect(owners.size).toBeGreaterThan(1);
    for (const buffer of buffers) {
      const stats = await buffer.stats();
      expect(stats.bufferedFields).toBe(21);
      const report = await buffer.flush();
      expect(report).toMatchObject({ documents: 20, fields: 21 });
      const docs = (await buffer.collection
        .find({}, { projection: { _bmiMarkers: 0 } })
        .toArray()) as unknown as Array<{ _id: string; n: number }>;
      expect(docs.reduce((sum, doc) => sum + doc.n, 0)).toBe((59 * 60) / 2);
      expect(docs.find((doc) => doc._id === 'doc-0')).toMatchObject({ lastAt: new Date('2026-05-01T00:00:00Z') });
      buffer.destroy();
    }
  });

  const ownersOf = async (namespaces: string[]) => {
    const ranges = await redis.cluster('SLOTS');
    const ownerOf = (slot: number) => ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
    return new Set(
      await Promise.all(namespaces.map(async (tag) => ownerOf((await redis.cluster('KEYSLOT', `{${tag}}`)) as number))),
    );
  };

  it('spreads a sharded buffer over the nodes and applies every update exactly once, shards flushing in parallel', async () => {
    const collection = mongo.db(dbName).collection(uniqueName('sharded'));
    const namespace = uniqueName('hot');
    const producers = Array.from(
      { length: 4 },
      () => new BufferedMongoIncrements(collection, redis, 60_000, { namespace, shards: 6, autoFlush: false }),
    );
    expect((await ownersOf(Array.from({ length: 6 }, (_, shard) => `${namespace}:${shard}`))).size).toBeGreaterThan(1);
    await Promise.all(
      producers.flatMap((producer, p) =>
        Array.from({ length: 300 }, (_, i) => producer.increment(`doc-${i % 100}`, 'n', p + 1)),
      ),
    );
    expect((await producers[0].stats()).bufferedFields).toBe(100);
    expect(await producers[1].readIncremented('doc-7', 'n')).toBe(3 * (1 + 2 + 3 + 4));
    // Every shard's job on its own (as the worker runs them), two of them at once on one shard.
    const reports = await Promise.all([
      ...Array.from({ length: 6 }, (_, shard) => producers[shard % 4].flush({ shard })),
      producers[3].flush({ shard: 2 }),
    ]);
    expect(reports.reduce((sum, report) => sum + report.fields, 0)).toBe(100);
    const docs = await collection.find().toArray();
    expect(docs).toHaveLength(100);
    expect(docs.every((doc) => doc.n === 3 * (1 + 2 + 3 + 4))).toBe(true);
    expect(await producers[2].readIncremented('doc-7', 'n')).toBe(30);
    for (const producer of producers) producer.destroy();
  });

  it('loses nothing when the shard count changes on a live buffer: the old shards are drained', async () => {
    const collection = mongo.db(dbName).collection(uniqueName('resharded'));
    const namespace = uniqueName('grow');
    const before = new BufferedMongoIncrements(collection, redis, 60_000, { namespace, autoFlush: false });
    await Promise.all(Array.from({ length: 50 }, (_, i) => before.increment(`doc-${i % 10}`, 'n', 1)));
    const after = new BufferedMongoIncrements(collection, redis, 60_000, {
      namespace,
      shards: 4,
      retiredShardCounts: [1],
      autoFlush: false,
    });
    await Promise.all(Array.from({ length: 50 }, (_, i) => after.increment(`doc-${i % 10}`, 'n', 1)));
    expect(await after.readIncremented('doc-3', 'n')).toBe(10);
    expect((await after.stats()).bufferedFields).toBe(20);
    await after.flush();
    expect((await after.stats()).bufferedFields).toBe(0);
    const docs = await collection.find().toArray();
    expect(docs.reduce((sum, doc) => sum + doc.n, 0)).toBe(100);
    before.destroy();
    after.destroy();
  });

  // A node whose connection goes silent without a reset: the watchdog closes that node's connection, the
  // Cluster client re-reads the slot map and sends the call again on a new connection.
  it.each([
    [
      'after the node ran the call (its reply lost)',
      (proxy: FaultProxy) => proxy.silenceNextReply((reply) => !reply.toString().startsWith('+PONG')),
    ],
    ['before the call reached the node', async (proxy: FaultProxy) => proxy.silenceAll()],
  ])(
    'answers every caller and applies each update once when the node connection goes silent %s',
    async (_, silence) => {
      const { proxies, seeds, restore } = await proxyClusterNodes(cluster);
      const client = new Cluster(seeds);
      try {
        const collection = mongo.db(dbName).collection(uniqueName('silent'));
        const producer = new BufferedMongoIncrements(collection, client, 60_000, {
          autoFlush: false,
          replyTimeoutMs: 300,
        });
        // The node that owns the buffer's slot goes silent.
        const slot = (await client.cluster('KEYSLOT', `{${producer.namespace}}`)) as number;
        const owner = (await client.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to)![2][1];
        const ownerProxy = proxies.find((proxy) => proxy.port === owner)!;
        const { answered, timeouts } = await incrementThroughSilence(producer, () => silence(ownerProxy));
        expect(answered).toBe('answered');
        expect(timeouts.length).toBeGreaterThanOrEqual(1);
        await producer.flush();
        expect(await collection.findOne({ _id: 'd' as never })).toMatchObject({ n: 201 });
        producer.destroy();
      } finally {
        client.disconnect();
        await restore();
      }
    },
  );
});
