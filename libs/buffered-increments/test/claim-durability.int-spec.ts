import { Redis } from 'ioredis';
import { Collection, Document } from 'mongodb';
import { BufferedMongoIncrementsOptions, ClaimNotDurableError } from '@bufferq/buffered-increments';
import {
  eventually,
  LocalServer,
  redisServersUnderTest,
  RedisServerKind,
  startPrivateRedis,
  uniqueName,
} from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';
import { ProxiedReplicaPair } from './fixtures/proxied-replica-pair';

// A claimed batch is written to MongoDB and then deleted from Redis. If Redis then loses the claim (a
// promoted replica that never saw it, an AOF without its last second), the same fields come back as a
// new batch and are applied again. These tests lose the claim for real and check the flush waited.
const context = bufferTestContext('durable');
const { freshCollection, buffered } = context;

/** Sum of `n` over the documents d0..d9 (the increments the scenarios make), and their count. */
async function appliedTotal(collection: Collection<Document>): Promise<{ sum: number; documents: number }> {
  const docs = await collection.find({ _id: { $regex: /^d\d$/ } as never }).toArray();
  return { sum: docs.reduce((total, doc) => total + (doc.n ?? 0), 0), documents: docs.length };
}

const BATCH_TOTAL = (30 * 31) / 2; // increments 1..30 over d0..d9
const AFTER_FAILOVER = 1_000;

/**
 * Buffers increments through the primary, lets them replicate, stops replication, flushes with `options`,
 * fails over to the replica, buffers one more increment and flushes there with a new instance.
 */
async function flushAcrossFailover(
  server: RedisServerKind,
  options: BufferedMongoIncrementsOptions & { appendOnly?: boolean },
) {
  const { appendOnly, ...bufferOptions } = options;
  const pair = await ProxiedReplicaPair.start({ server, appendOnly });
  const client = new Redis(pair.url, { retryStrategy: () => 20 });
  try {
    const collection = freshCollection();
    const namespace = uniqueName('failover');
    const flushOptions = { namespace, autoFlush: false, durabilityTimeoutMs: 300, ...bufferOptions };
    const producer = buffered(collection, 60_000, { namespace, autoFlush: false }, client);
    const flusher = buffered(collection, 60_000, flushOptions, client);
    // A batch before the fault, so the buffer's scope and batch sequence exist on both servers.
    await producer.increment('warm', 'n', 1);
    await producer.flush();
    await Promise.all(Array.from({ length: 30 }, (_, i) => producer.increment(`d${i % 10}`, 'n', i + 1)));
    expect(await client.wait(1, 5_000)).toBe(1); // the replica holds all of it
    pair.stopReplication();
    const bufferedBefore = (await flusher.stats()).bufferedFields;
    const firstFlush = await flusher.flush().then(
      (report) => ({ report, error: undefined }),
      (error: unknown) => ({ report: undefined, error }),
    );
    const beforeFailover = await appliedTotal(collection);
    const bufferedAfter = (await flusher.stats()).bufferedFields;
    await pair.failover();
    expect(await eventually(() => client.status === 'ready', 5_000)).toBe(true);
    await producer.increment('d0', 'n', AFTER_FAILOVER); // producers carry on against the promoted replica
    // The promoted server has no replica yet: the new flusher cannot wait for one.
    const rescuer = buffered(collection, 60_000, { namespace, autoFlush: false }, client);
    await rescuer.flush();
    return { firstFlush, bufferedBefore, bufferedAfter, beforeFailover, afterFailover: await appliedTotal(collection) };
  } finally {
    client.disconnect();
    await pair.remove();
  }
}

describe.each(redisServersUnderTest())('on $name', ({ name }) => {
  describe('A claim the replica never received, then a failover', () => {
    it('is not written to MongoDB (ClaimNotDurableError), and the promoted replica applies every increment once', async () => {
      const outcome = await flushAcrossFailover(name, { waitForReplicas: 1 });
      expect(outcome.firstFlush.error).toBeInstanceOf(ClaimNotDurableError);
      expect(outcome.beforeFailover).toEqual({ sum: 0, documents: 0 });
      expect(outcome.bufferedAfter).toBe(outcome.bufferedBefore); // still claimed, for the next flush
      expect(outcome.afterFailover).toEqual({ sum: BATCH_TOTAL + AFTER_FAILOVER, documents: 10 });
    });

    it('is applied twice when waitForReplicas is 0 (the documented limit of a replicated Redis left at the default)', async () => {
      const outcome = await flushAcrossFailover(name, { waitForReplicas: 0 });
      expect(outcome.firstFlush.report?.fields).toBe(10);
      expect(outcome.beforeFailover).toEqual({ sum: BATCH_TOTAL, documents: 10 });
      // The promoted replica still has the fields in its live buffer and hands them out as a new batch.
      expect(outcome.afterFailover).toEqual({ sum: 2 * BATCH_TOTAL + AFTER_FAILOVER, documents: 10 });
    });
  });
});

/** How often the server ran WAITAOF since it started (0 when it never did, or has no such command). */
async function waitAofCalls(client: Redis): Promise<number> {
  const stats = await client.info('commandstats');
  return Number(/^cmdstat_waitaof:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
}

describe('Waiting for the AOF (WAITAOF)', () => {
  let server: LocalServer | undefined;
  let client: Redis | undefined;

  const startServer = async (kind: RedisServerKind, appendOnly: boolean) => {
    server = await startPrivateRedis({ server: kind, appendOnly, appendFsync: 'everysec' });
    client = new Redis(server.url);
    return client;
  };

  afterEach(async () => {
    client?.disconnect();
    await server?.remove();
    client = server = undefined;
  });

  const hasValkey = redisServersUnderTest().some((tested) => tested.name === 'valkey');

  (hasValkey ? describe : describe.skip)('on valkey', () => {
    it('waits for the local AOF fsync of the claim when AOF is on (auto), then writes MongoDB', async () => {
      const redis = await startServer('valkey', true);
      const collection = freshCollection();
      const buffer = buffered(collection, 60_000, { autoFlush: false }, redis);
      await Promise.all(Array.from({ length: 30 }, (_, i) => buffer.increment(`d${i % 10}`, 'n', i + 1)));
      await buffer.flush();
      expect(await waitAofCalls(redis)).toBeGreaterThanOrEqual(1);
      expect(await appliedTotal(collection)).toEqual({ sum: BATCH_TOTAL, documents: 10 });
    });

    it('writes nothing to MongoDB and keeps the batch in Redis when waitForAof is true but AOF is off', async () => {
      const redis = await startServer('valkey', false);
      const collection = freshCollection();
      const buffer = buffered(
        collection,
        60_000,
        { autoFlush: false, waitForAof: true, durabilityTimeoutMs: 300 },
        redis,
      );
      await Promise.all(Array.from({ length: 30 }, (_, i) => buffer.increment(`d${i % 10}`, 'n', i + 1)));
      const bufferedBefore = (await buffer.stats()).bufferedFields;
      // Valkey refuses WAITAOF with numlocal on a server without AOF: the wait can never succeed.
      await expect(buffer.flush()).rejects.toThrow(/appendonly|not durable/i);
      expect(await waitAofCalls(redis)).toBeGreaterThanOrEqual(1);
      expect(await appliedTotal(collection)).toEqual({ sum: 0, documents: 0 });
      expect((await buffer.stats()).bufferedFields).toBe(bufferedBefore);
      // The batch stayed claimed: the next flush that may write takes it over, once.
      const retry = buffered(
        collection,
        60_000,
        { namespace: buffer.namespace, autoFlush: false, waitForAof: false },
        redis,
      );
      expect(await retry.flush()).toMatchObject({ recoveredBatches: 1, fields: 10 });
      expect(await appliedTotal(collection)).toEqual({ sum: BATCH_TOTAL, documents: 10 });
    });

    it('refuses a claim no replica AOF holds (WAITAOF numreplicas), and the promoted replica applies every increment once', async () => {
      const outcome = await flushAcrossFailover('valkey', { waitForReplicas: 1, appendOnly: true });
      expect(outcome.firstFlush.error).toBeInstanceOf(ClaimNotDurableError);
      expect(String(outcome.firstFlush.error)).toMatch(/local AOF and 0 of 1 replica AOFs/);
      expect(outcome.beforeFailover).toEqual({ sum: 0, documents: 0 });
      expect(outcome.afterFailover).toEqual({ sum: BATCH_TOTAL + AFTER_FAILOVER, documents: 10 });
    });
  });

  describe('on redis 7.0 (no WAITAOF)', () => {
    it('flushes with AOF on and waitForAof auto, without asking for WAITAOF', async () => {
      const redis = await startServer('redis', true);
      expect(await redis.info('persistence')).toMatch(/^aof_enabled:1/m);
      expect(await redis.call('COMMAND', 'INFO', 'WAITAOF')).toEqual([null]); // the premise: this Redis has none
      const collection = freshCollection();
      const buffer = buffered(collection, 60_000, { autoFlush: false }, redis);
      await Promise.all(Array.from({ length: 30 }, (_, i) => buffer.increment(`d${i % 10}`, 'n', i + 1)));
      await buffer.flush();
      expect(await redis.info('commandstats')).not.toMatch(/waitaof/i);
      expect(await appliedTotal(collection)).toEqual({ sum: BATCH_TOTAL, documents: 10 });
    });
  });
});
