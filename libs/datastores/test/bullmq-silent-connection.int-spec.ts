import { Queue, Worker } from 'bullmq';
import { BULLMQ_LONGEST_BLOCK_MS, bullmqConnection } from '@bufferq/datastores';
import { eventually, FaultProxy, testServices, uniqueName } from '@bufferq/testing';

// BullMQ's own connections, gone silent: every connection of a queue and a worker still looks open, but
// nothing comes back (a stuck proxy, a peer gone without a reset). Without the watchdog the worker waits
// for jobs for ever and the queue's add never answers, until the OS drops the connection.
describe('BullMQ connections gone silent (fault proxy)', () => {
  const replyTimeoutMs = 500;
  let proxy: FaultProxy;
  let queue: Queue;
  let worker: Worker;

  beforeAll(async () => {
    proxy = await new FaultProxy(Number(new URL(testServices().redisUrl).port)).start();
  });
  afterAll(async () => {
    // Connections left silent by a failed case would hold the closes below.
    proxy.cutAll();
    await worker?.close(true);
    await queue?.close();
    await proxy.stop();
  });

  it(
    'reconnects them, so the add is answered and the worker runs the job once',
    async () => {
      const connection = bullmqConnection({ url: proxy.url, replyTimeoutMs });
      const name = uniqueName('silent-bullmq');
      const processed: string[] = [];
      queue = new Queue(name, { connection });
      worker = new Worker(name, async (job) => void processed.push(job.id!), { connection });
      await worker.waitUntilReady();
      await queue.add('before', {}, { jobId: 'before' });
      expect(await eventually(() => processed.length === 1, 5_000)).toBe(true);

      proxy.silenceAll();
      const added = queue.add('during', {}, { jobId: 'during' });
      const answeredWithin = BULLMQ_LONGEST_BLOCK_MS + replyTimeoutMs + 5_000;
      await expect(
        Promise.race([added, new Promise((_, reject) => setTimeout(reject, answeredWithin, 'no answer'))]),
      ).resolves.toMatchObject({ id: 'during' });
      expect(await eventually(() => processed.length === 2, 5_000)).toBe(true);
      expect(processed).toEqual(['before', 'during']);
      expect(await queue.getJobCounts('completed', 'wait', 'active', 'failed')).toEqual({
        completed: 2,
        wait: 0,
        active: 0,
        failed: 0,
      });
    },
    2 * BULLMQ_LONGEST_BLOCK_MS + 20_000,
  );
});
