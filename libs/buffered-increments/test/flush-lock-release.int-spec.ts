import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { eventually, FaultProxy, freePort, sleep, uniqueName } from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';

// A flush that fails because Redis went away (a failover, a restart) cannot release its lock then. Once
// Redis is back, the lock nobody holds must not make the next flush wait out its lease.
const context = bufferTestContext('lock_release');
const { freshCollection, buffered } = context;

describe('The flush lock after a drain that lost Redis', () => {
  let redisProxy: FaultProxy;
  let mongoProxy: FaultProxy;
  let heldMongo: MongoClient;
  let client: Redis;

  beforeAll(async () => {
    redisProxy = await new FaultProxy(Number(new URL(context.redisUrl).port)).start();
    mongoProxy = await new FaultProxy(Number(new URL(context.mongoUrl).port)).start();
    heldMongo = await new MongoClient(`mongodb://127.0.0.1:${mongoProxy.port}`, { directConnection: true }).connect();
    client = new Redis(redisProxy.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    await eventually(() => client.status === 'ready', 5_000);
  });

  afterAll(async () => {
    client.disconnect();
    mongoProxy.release();
    await heldMongo.close(true);
    await redisProxy.stop();
    await mongoProxy.stop();
  });

  it('is released once Redis is back, so the next flush elsewhere goes on at once, and applies once', async () => {
    const collection = freshCollection();
    const namespace = uniqueName('release');
    const lockLeaseMs = 15_000;
    const failing = buffered(
      heldMongo.db(context.dbName).collection(collection.collectionName),
      60_000,
      { namespace, autoFlush: false, lockLeaseMs, reconnectWaitMs: 0 },
      client,
    );
    const other = buffered(collection, 60_000, { namespace, autoFlush: false, lockLeaseMs });
    await other.increment('warm', 'n', 1);
    await failing.flush(); // warm: probes, scripts
    for (let i = 0; i < 10; i++) await other.increment(`d${i % 5}`, 'n', i + 1);

    // The drain claims its batch and writes MongoDB (held on the wire); meanwhile Redis goes away.
    mongoProxy.hold();
    const drained = failing.flush().then(
      () => 'flushed',
      (error: Error) => error,
    );
    await sleep(300);
    const closedPort = await freePort();
    redisProxy.retarget(closedPort);
    redisProxy.cutAll();
    await eventually(() => client.status !== 'ready', 5_000, 1);
    mongoProxy.release();
    // The write lands; finishing the batch and releasing the lock fail: Redis is away.
    expect(await drained).toBeInstanceOf(Error);
    redisProxy.retarget(Number(new URL(context.redisUrl).port));
    await eventually(() => client.status === 'ready', 5_000);

    const startedAt = Date.now();
    const report = await other.flush();
    const waitedMs = Date.now() - startedAt;
    // The lease had more than 13 s to run: the flush went on within a few retries of the release.
    expect(waitedMs).toBeLessThan(3_000);
    expect(report.recoveredBatches).toBe(1);
    const docs = await collection.find({ _id: { $regex: /^d/ } as never }).toArray();
    expect(docs.map((doc) => [doc._id, doc.n]).sort()).toEqual([
      ['d0', 1 + 6],
      ['d1', 2 + 7],
      ['d2', 3 + 8],
      ['d3', 4 + 9],
      ['d4', 5 + 10],
    ]);
  });
});
