import { MongoClient } from 'mongodb';
import { MongoCallTimeoutError } from '@bufferq/buffered-increments';
import { FaultProxy, sleep, uniqueName } from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';

// A MongoDB connection whose flow vanished (a NAT or firewall dropped it) answers nothing and never
// closes, while the driver's monitor, on a connection of its own, still sees the server: the driver
// would wait for the write's answer for as long as the operating system keeps the connection. The flush
// gives the write up after the lock's lease and is tried again; the write it gave up did land.
const context = bufferTestContext('silent_mongo');
const { freshCollection, buffered } = context;

describe('BufferedMongoIncrements when a MongoDB connection goes silent', () => {
  let proxy: FaultProxy;
  let viaProxy: MongoClient;

  beforeAll(async () => {
    proxy = await new FaultProxy(Number(new URL(context.mongoUrl).port)).start();
    viaProxy = await new MongoClient(`mongodb://127.0.0.1:${proxy.port}`, { directConnection: true }).connect();
  });

  afterAll(async () => {
    await proxy.stop();
    await viaProxy.close(true);
  });

  it('gives the write up after the lock lease, and the next flush applies the batch exactly once', async () => {
    const collection = freshCollection();
    const buffer = buffered(viaProxy.db(context.dbName).collection(collection.collectionName), 60_000, {
      namespace: uniqueName('silent'),
      autoFlush: false,
      lockLeaseMs: 1_500,
    });
    await buffer.increment('warm', 'n', 1);
    await buffer.flush();
    for (let i = 0; i < 10; i++) await buffer.increment(`d${i % 5}`, 'n', i + 1);
    // The update reaches MongoDB and runs; its answer is swallowed and the connection goes silent.
    const silenced = proxy.silenceNextReply((reply) => reply.includes('nModified'));
    const startedAt = Date.now();
    const outcome = await Promise.race([
      buffer.flush().then(
        () => 'flushed',
        (error: unknown) => error,
      ),
      sleep(10_000).then(() => 'still waiting after 10 s'),
    ]);
    const settledAfterMs = Date.now() - startedAt;
    await silenced;
    expect(outcome).toBeInstanceOf(MongoCallTimeoutError);
    expect(settledAfterMs).toBeGreaterThanOrEqual(1_400);
    expect(settledAfterMs).toBeLessThan(5_000);
    // The write it gave up ran: the batch is in MongoDB already, and the next flush must not add it again.
    const ranBeforeRetry = await collection.find({ _id: { $regex: /^d/ } as never }).toArray();
    expect(ranBeforeRetry.reduce((sum, doc) => sum + doc.n, 0)).toBe(55);
    const report = await buffer.flush();
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

  it('gives a read up after the lock lease, and reads again on another connection', async () => {
    const collection = freshCollection();
    const buffer = buffered(viaProxy.db(context.dbName).collection(collection.collectionName), 60_000, {
      namespace: uniqueName('silentread'),
      autoFlush: false,
      lockLeaseMs: 1_500,
    });
    await buffer.increment('a', 'n', 4);
    await buffer.flush();
    await buffer.increment('a', 'n', 1);
    // A find's answer (its cursor's first batch) is swallowed and the connection goes silent.
    const silenced = proxy.silenceNextReply((reply) => reply.includes('firstBatch'));
    const startedAt = Date.now();
    const outcome = await Promise.race([
      buffer.readIncremented('a', 'n').then(
        (value) => value,
        (error: unknown) => error,
      ),
      sleep(10_000).then(() => 'still waiting after 10 s'),
    ]);
    await silenced;
    expect(outcome).toBeInstanceOf(MongoCallTimeoutError);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(await buffer.readIncremented('a', 'n')).toBe(5);
  });
});
