import { Cluster } from 'ioredis';
import { MongoClient } from 'mongodb';
import { BufferedMongoIncrements } from '@bufferq/buffered-increments';
import { startPrivateRedisCluster, testServices, uniqueName } from '@bufferq/testing';

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
      (name) => new BufferedMongoIncrements(mongo.db(dbName).collection(name), redis, 60_000, { autoFlush: false, readChunkSize: 10 }),
    );
    for (const buffer of buffers) {
      await Promise.all(Array.from({ length: 60 }, (_, i) => buffer.increment(`doc-${i % 20}`, 'n', i)));
      await buffer.max('doc-0', 'lastAt', new Date('2026-05-01T00:00:00Z'));
    }
    // The namespaces hash to slots owned by more than one node: this really exercises the Cluster.
    const ranges = await redis.cluster('SLOTS');
    const ownerOf = (slot: number) => ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
    const owners = new Set(
      await Promise.all(buffers.map(async (buffer) => ownerOf((await redis.cluster('KEYSLOT', `{${buffer.namespace}}`)) as number))),
    );
    expect(owners.size).toBeGreaterThan(1);
    for (const buffer of buffers) {
      const stats = await buffer.stats();
      expect(stats.bufferedFields).toBe(21);
      const report = await buffer.flush();
      expect(report).toMatchObject({ documents: 20, fields: 21 });
      const docs = (await buffer.collection.find({}, { projection: { _bmiMarkers: 0 } }).toArray()) as unknown as Array<{ _id: string; n: number }>;
      expect(docs.reduce((sum, doc) => sum + doc.n, 0)).toBe((59 * 60) / 2);
      expect(docs.find((doc) => doc._id === 'doc-0')).toMatchObject({ lastAt: new Date('2026-05-01T00:00:00Z') });
      buffer.destroy();
    }
  });
});
