import { ConnectionOptions, Queue, Worker } from 'bullmq';
import { BULLMQ_LONGEST_BLOCK_MS, bullmqConnection, hashTaggedQueueName } from '@bufferq/datastores';
import {
  eventually,
  FaultProxy,
  proxyClusterNodes,
  startPrivateRedisCluster,
  testServices,
  uniqueName,
} from '@bufferq/testing';

/** Where the queue and the worker connect, through fault proxies; `silence` makes every open connection silent. */
interface ProxiedRedis {
  connection: ConnectionOptions;
  silence(): void;
  /** Cuts what the proxies hold (a failed case may leave connections silent), then closes. */
  cut(): void;
  stop(): Promise<void>;
}

const replyTimeoutMs = 500;

const singleServer = async (): Promise<ProxiedRedis> => {
  const proxy = await new FaultProxy(Number(new URL(testServices().redisUrl).port)).start();
  return {
    connection: bullmqConnection({ url: proxy.url, replyTimeoutMs }),
    silence: () => proxy.silenceAll(),
    cut: () => proxy.cutAll(),
    stop: () => proxy.stop(),
  };
};

const cluster = async (): Promise<ProxiedRedis> => {
  const servers = await startPrivateRedisCluster();
  const { proxies, seeds, restore } = await proxyClusterNodes(servers);
  return {
    connection: bullmqConnection({ clusterNodes: seeds, replyTimeoutMs }),
    silence: () => proxies.forEach((proxy) => proxy.silenceAll()),
    cut: () => proxies.forEach((proxy) => proxy.cutAll()),
    stop: async () => {
      await restore();
      await servers.remove();
    },
  };
};

// BullMQ's own connections, gone silent: every connection of a queue and a worker still looks open, but
// nothing comes back (a stuck proxy, a peer gone without a reset). Without the watchdog the worker waits
// for jobs for ever and the queue's add never answers, until the OS drops the connection.
describe.each([
  ['a single server', singleServer],
  ['a Redis Cluster', cluster],
])('BullMQ connections to %s gone silent (fault proxies)', (_, start) => {
  let redis: ProxiedRedis;
  let queue: Queue;
  let worker: Worker;

  beforeAll(async () => {
    redis = await start();
  });
  afterAll(async () => {
    redis.cut();
    await worker?.close(true);
    await queue?.close();
    await redis.stop();
  });

  it(
    'reconnects them, so the add is answered and the worker runs the job once',
    async () => {
      const name = hashTaggedQueueName(uniqueName('silent-bullmq'));
      const processed: string[] = [];
      queue = new Queue(name, { connection: redis.connection });
      worker = new Worker(name, async (job) => void processed.push(job.id!), { connection: redis.connection });
      await worker.waitUntilReady();
      await queue.add('before', {}, { jobId: 'before' });
      expect(await eventually(() => processed.length === 1, 5_000)).toBe(true);

      redis.silence();
      const added = queue.add('during', {}, { jobId: 'during' });
      // Found silent at most half a timeout late (see SilentConnectionWatchdog), then BullMQ reconnects
      // after at least 1 s.
      const answeredWithin = 1.5 * (BULLMQ_LONGEST_BLOCK_MS + replyTimeoutMs) + 5_000;
      await expect(
        Promise.race([added, new Promise((_, reject) => setTimeout(reject, answeredWithin, 'no answer'))]),
      ).resolves.toMatchObject({ id: 'during' });
      expect(await eventually(() => processed.length === 2, 5_000)).toBe(true);
      expect(processed).toEqual(['before', 'during']);
      // The processor has run; BullMQ marks the job completed right after, in its own round trip.
      const counts = () => queue.getJobCounts('completed', 'wait', 'active', 'failed');
      await eventually(async () => (await counts()).completed === 2, 5_000);
      expect(await counts()).toEqual({
        completed: 2,
        wait: 0,
        active: 0,
        failed: 0,
      });
    },
    2 * BULLMQ_LONGEST_BLOCK_MS + 30_000,
  );
});
