import { Redis } from 'ioredis';
import { BufferUnavailableError } from '@bufferq/buffered-increments';
import { eventually, FaultProxy, LocalServer, sleep, startPrivateRedis, testServices } from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';

// A client reconnecting after a lost connection (a blip, a failover, the silent-connection watchdog) is
// away for some 100 ms. An update made then waits for the new connection, within reconnectWaitMs of the
// loss; past that, updates fail at once, so they do not pile up in the process while Redis is away.
const { freshCollection, buffered } = bufferTestContext('reconnect_wait');

describe('BufferedMongoIncrements while its client reconnects', () => {
  let proxy: FaultProxy;
  let client: Redis;

  beforeEach(async () => {
    proxy = await new FaultProxy(Number(new URL(testServices().redisUrl).port)).start();
    // As the apps' clients: no offline queue, and a reconnect that takes a while (here 200 ms).
    client = new Redis(proxy.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    await eventually(() => client.status === 'ready', 5_000);
  });

  afterEach(async () => {
    client.disconnect();
    await proxy.stop();
  });

  const cutAndAwaitReconnecting = async () => {
    proxy.cutAll();
    await eventually(() => client.status === 'reconnecting', 5_000, 1);
  };

  it('buffers an update made while the client reconnects, once it is back, and exactly once', async () => {
    const collection = freshCollection();
    const buffer = buffered(collection, 60_000, { autoFlush: false }, client);
    await buffer.increment('a', 'n', 1);
    await cutAndAwaitReconnecting();
    await buffer.increment('a', 'n', 10);
    await buffer.max('a', 'top', 7);
    await buffer.flush();
    expect(await collection.findOne({ _id: 'a' as never }, { projection: { _bmiMarkers: 0 } })).toEqual({
      _id: 'a',
      n: 11,
      top: 7,
    });
  });

  it('buffers an all-or-nothing call made while the client reconnects', async () => {
    const collection = freshCollection();
    const buffer = buffered(collection, 60_000, { autoFlush: false }, client);
    await buffer.increment('warm', 'n', 1);
    await cutAndAwaitReconnecting();
    await buffer.incrementAll([
      { documentId: 'a', fieldPath: 'n', delta: 2 },
      { documentId: 'b', fieldPath: 'n', delta: 3 },
    ]);
    await buffer.flush();
    const docs = await collection.find({ _id: { $in: ['a', 'b'] } as never }).toArray();
    expect(docs.map((doc) => [doc._id, doc.n]).sort()).toEqual([
      ['a', 2],
      ['b', 3],
    ]);
  });

  it('reads a buffered value while the client reconnects, once it is back', async () => {
    const buffer = buffered(freshCollection(), 60_000, { autoFlush: false }, client);
    await buffer.increment('a', 'n', 5);
    await cutAndAwaitReconnecting();
    expect(await buffer.readIncremented('a', 'n')).toBe(5);
  });

  it('fails at once while the client reconnects when reconnectWaitMs is 0', async () => {
    const buffer = buffered(freshCollection(), 60_000, { autoFlush: false, reconnectWaitMs: 0 }, client);
    await buffer.increment('a', 'n', 1);
    await cutAndAwaitReconnecting();
    await expect(buffer.increment('a', 'n', 10)).rejects.toBeInstanceOf(BufferUnavailableError);
  });
});

describe('BufferedMongoIncrements while Redis stays away', () => {
  let privateRedis: LocalServer;

  afterEach(async () => {
    await privateRedis?.remove();
  });

  it('fails an update when the loss outlasts reconnectWaitMs, and later updates at once', async () => {
    privateRedis = await startPrivateRedis();
    const client = new Redis(privateRedis.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 50,
    });
    try {
      await eventually(() => client.status === 'ready', 5_000);
      const buffer = buffered(freshCollection(), 60_000, { autoFlush: false, reconnectWaitMs: 600 }, client);
      await buffer.increment('a', 'n', 1);
      await privateRedis.kill();
      await eventually(() => client.status !== 'ready', 5_000, 1);
      const lostAt = Date.now();
      const waited = buffer.increment('a', 'n', 10);
      await expect(waited).rejects.toBeInstanceOf(BufferUnavailableError);
      const failedAfterMs = Date.now() - lostAt;
      // It waited for the client (a window of 600 ms from the loss), then gave up.
      expect(failedAfterMs).toBeGreaterThanOrEqual(400);
      expect(failedAfterMs).toBeLessThan(1_500);
      // From now on each fails at once, and says it was not buffered: in whatever status the client is
      // found (reconnecting, or connecting to the stopped server), nothing was sent.
      for (let attempt = 0; attempt < 20; attempt++) {
        const startedAt = Date.now();
        const refusal = await buffer.increment('a', 'n', 100).then(
          () => new Error('buffered while Redis was away'),
          (error: Error) => error,
        );
        expect(Date.now() - startedAt).toBeLessThan(100);
        expect(refusal).toBeInstanceOf(BufferUnavailableError);
        expect(refusal.message).toMatch(/not connected.*the update was not buffered/);
        await sleep(7);
      }
    } finally {
      client.disconnect();
    }
  });
});
