import { Redis } from 'ioredis';
import { ClaimNotDurableError } from '@bufferq/buffered-increments';
import { eventually, FaultProxy, sleep, testServices, uniqueName } from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';
import { ProxiedReplicaPair } from './fixtures/proxied-replica-pair';

// WAIT and WAITAOF only count the writes of the connection they run on; a reconnect between the claim
// and the wait must not pass for durability (on Valkey such a WAIT returns at once).
const { freshCollection, buffered } = bufferTestContext('wait_reconnect');

it.each(['redis', 'valkey'] as const)(
  'refuses a claim whose connection was lost before WAIT, and a failover then applies it once (%s)',
  async (server) => {
    const pair = await ProxiedReplicaPair.start({ server });
    const clientProxy = (pair as unknown as { clients: FaultProxy }).clients;
    const client = new Redis(pair.url, { retryStrategy: () => 20 });
    try {
      const collection = freshCollection();
      const namespace = uniqueName('wait');
      const producer = buffered(collection, 60_000, { namespace, autoFlush: false }, client);
      const flusher = buffered(
        collection,
        60_000,
        { namespace, autoFlush: false, waitForReplicas: 1, durabilityTimeoutMs: 300 },
        client,
      );
      await producer.increment('warm', 'n', 1);
      await producer.flush();
      for (let i = 0; i < 10; i++) await producer.increment(`d${i}`, 'n', 1);
      expect(await client.wait(1, 5_000)).toBe(1);
      pair.stopReplication();
      // The connection drops after the claim's reply arrived and before WAIT is sent (a network blip).
      const call = client.call.bind(client) as (...args: unknown[]) => Promise<unknown>;
      (client as unknown as { call: unknown }).call = async (...args: unknown[]) => {
        if (String(args[0]).toUpperCase() === 'WAIT') {
          clientProxy.cutAll();
          return call(...args);
        }
        return call(...args);
      };
      const outcome = await flusher.flush().then(
        () => 'flushed',
        (error: unknown) => error,
      );
      const applied = await collection.countDocuments({ _id: { $regex: /^d\d$/ } as never });
      expect(applied).toBe(0);
      await pair.failover();
      await eventually(() => client.status === 'ready', 5_000);
      const rescuer = buffered(collection, 60_000, { namespace, autoFlush: false }, client);
      await rescuer.flush();
      const docs = await collection.find({ _id: { $regex: /^d\d$/ } as never }).toArray();
      expect(outcome).toBeInstanceOf(ClaimNotDurableError);
      expect(docs.reduce((sum, doc) => sum + doc.n, 0)).toBe(10);
    } finally {
      client.disconnect();
      await pair.remove();
    }
  },
);

// A WAIT holds its connection's replies (a watchdog PING included) up to its timeout: a reply timeout
// shorter than the durability wait must not take the slow wait for a silent connection and reconnect.
it('waits out a slow durability wait without reconnecting, however short the reply timeout', async () => {
  const client = new Redis(testServices().redisUrl, { retryStrategy: () => 20 });
  try {
    const collection = freshCollection();
    const namespace = uniqueName('slowwait');
    // No replica will ever acknowledge: each WAIT blocks its full 1,200 ms, four times the reply timeout.
    const flusher = buffered(
      collection,
      60_000,
      { namespace, autoFlush: false, waitForReplicas: 1, durabilityTimeoutMs: 1_200, replyTimeoutMs: 300 },
      client,
    );
    const timeouts: number[] = [];
    flusher.on('replyTimeout', ({ unansweredForMs }: { unansweredForMs: number }) => timeouts.push(unansweredForMs));
    await flusher.increment('d', 'n', 1);
    const outcome = await flusher.flush().then(
      () => 'flushed',
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(ClaimNotDurableError);
    expect((outcome as Error).message).toMatch(/reached 0 of 1 replicas within 1200 ms/);
    expect(timeouts).toEqual([]);
    // Afterwards the connection answers PINGs at once again: still no reconnect.
    await sleep(700);
    expect(timeouts).toEqual([]);
  } finally {
    client.disconnect();
  }
});
