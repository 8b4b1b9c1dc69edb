// Races between the steps of a timer's life that each run in their own process or connection: a delivery
// job that waited past its lease, a cancel landing between the MongoDB insert and the Redis indexing, and a
// failed enqueue handing claimed timers back. Each test provokes the race with real components (workers,
// a FaultProxy on the Redis connection, a queue server that refuses writes) and counts the POSTs.
import { Redis } from 'ioredis';
import {
  eventually,
  FaultProxy,
  LocalServer,
  sleep,
  startPrivateRedis,
  testServices,
  uniqueName,
  WebhookReceiver,
} from '@bufferq/testing';
import { TIMERS_COLLECTION } from '../src/storage/timers.repository';
import { fastTimersConfig, startTimers, TimersContext } from './fixtures/timers-harness';

const inSeconds = (seconds: number) => ({ hours: 0, minutes: 0, seconds });

describe('timers under races between claim, queue, send, create and cancel', () => {
  const { redisUrl, mongoUrl } = testServices();
  let receiver: WebhookReceiver;
  const open: TimersContext[] = [];
  const start = async (options: Parameters<typeof startTimers>[0]) => {
    const ctx = await startTimers(options);
    open.push(ctx);
    return ctx;
  };
  const postsTo = (prefix: string, ids: string[]) => ids.map((id) => receiver.requestsFor(`/${prefix}/${id}`).length);

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
  });
  const closeAll = async () => {
    for (const ctx of open.splice(0).reverse()) {
      await ctx.db.dropDatabase().catch(() => undefined);
      await ctx.close();
    }
  };
  afterEach(async () => {
    receiver.behaviour = () => 200;
    await closeAll();
  });
  afterAll(() => receiver.stop());

  it('sends a timer once when its delivery job waited behind a slow receiver past its lease and another worker re-claimed it', async () => {
    // Two delivery jobs per worker (one request in flight, one batch per timer, no lookahead): four hung
    // POSTs to the slow receiver hold every job slot of both workers for the delivery timeout, so the jobs
    // of the fast receiver's timers wait in the queue three times longer than their leases.
    const config = fastTimersConfig({
      TIMERS_REDIS_PREFIX: uniqueName('tstale'),
      TIMERS_DELIVERY_LOCK_MS: '800',
      TIMERS_DELIVERY_TIMEOUT_MS: '2500',
      TIMERS_DELIVERY_CONCURRENCY: '1',
      TIMERS_DELIVERY_BATCH: '1',
      TIMERS_SCHEDULER_LOOKAHEAD_MS: '0',
      TIMERS_SCHEDULER_BATCH: '20',
      TIMERS_MAX_ATTEMPTS: '1',
    });
    const services = { redisUrl, mongoUrl, mongoDb: uniqueName('timers_stale'), config };
    receiver.behaviour = (request) => (request.path.startsWith('/slow/') ? 'hang' : 200);
    const api = await start({ ...services, worker: false });
    await start({ ...services, worker: true });
    await start({ ...services, worker: true });
    // One createMany: same due time, ids in creation order, so the slow timers are claimed and queued first.
    const ids = await api.timers.createMany([
      ...Array.from({ length: 4 }, () => ({ ...inSeconds(0), url: `${receiver.url}/slow` })),
      ...Array.from({ length: 3 }, () => ({ ...inSeconds(0), url: `${receiver.url}/fast` })),
    ]);
    const [slow, fast] = [ids.slice(0, 4), ids.slice(4)];

    expect(await eventually(() => postsTo('fast', fast).every((count) => count >= 1), 15_000)).toBe(true);
    // Late duplicates would come from the stale jobs and from the re-claims' jobs: let both run out.
    expect(
      await eventually(
        async () =>
          (await api.db.collection(TIMERS_COLLECTION).countDocuments({ status: { $in: ['delivered', 'failed'] } })) ===
          ids.length,
        15_000,
      ),
    ).toBe(true);
    await sleep(1_000);
    expect(postsTo('fast', fast)).toEqual([1, 1, 1]);
    expect(postsTo('slow', slow)).toEqual([1, 1, 1, 1]);
  });

  describe('a timer whose creator is held between the MongoDB insert and the Redis indexing', () => {
    let proxy: FaultProxy;
    beforeEach(async () => {
      proxy = await new FaultProxy(Number(new URL(redisUrl).port)).start();
    });
    afterEach(async () => {
      await closeAll();
      await proxy.stop();
    });

    /** An api whose Redis traffic passes the proxy, and a worker (direct) sharing its schedule. */
    const startPair = async (name: string, reconcileIntervalMs: number) => {
      const config = fastTimersConfig({
        TIMERS_REDIS_PREFIX: uniqueName(name),
        TIMERS_RECONCILE_INTERVAL_MS: String(reconcileIntervalMs),
      });
      const mongoDb = uniqueName(`timers_${name}`);
      const creator = await start({
        redisUrl: proxy.url,
        mongoUrl,
        mongoDb,
        config,
        worker: false,
      });
      const worker = await start({ redisUrl, mongoUrl, mongoDb, config, worker: true });
      return { creator, worker };
    };
    const storedId = async (ctx: TimersContext, url: string) => {
      let id: string | undefined;
      await eventually(async () => {
        const timer = await ctx.db.collection(TIMERS_COLLECTION).findOne({ url });
        id = timer?._id.toHexString();
        return id !== undefined;
      }, 5_000);
      return id!;
    };

    it('never fires it when a cancel lands before the indexing', async () => {
      // Due within two reconciler periods: staged, so a worker would send it without reading MongoDB.
      const { creator, worker } = await startPair('tcancel', 60_000);
      const url = `${receiver.url}/cancel-early/${uniqueName('u')}`;
      proxy.hold();
      const creating = creator.timers.create({ ...inSeconds(1), url });
      const id = await storedId(worker, url);
      // Another api replica cancels it while the creator's index write waits in the proxy.
      expect(await worker.timers.cancel(id)).toMatchObject({ id, status: 'cancelled' });
      proxy.release();
      expect(await creating).toEqual({ id, created: true });

      await sleep(2_000);
      expect(receiver.requests.filter((request) => request.path.startsWith(new URL(url).pathname))).toEqual([]);
      expect((await worker.timers.get(id)).status).toBe('cancelled');
    });

    it('sends it once when the reconciler indexed and delivered it before the indexing', async () => {
      const { creator, worker } = await startPair('tlateidx', 300);
      const url = `${receiver.url}/late-index/${uniqueName('u')}`;
      const path = new URL(url).pathname;
      proxy.hold();
      const creating = creator.timers.create({ ...inSeconds(0), url });
      const id = await storedId(worker, url);
      // The worker's reconciler (every 300 ms) finds it in MongoDB, and the worker delivers it.
      expect(await eventually(async () => (await worker.timers.get(id)).status === 'delivered', 5_000)).toBe(true);
      proxy.release();
      await creating;

      await sleep(1_500);
      expect(receiver.requestsFor(`${path}/${id}`)).toHaveLength(1);
    });
  });

  describe('claimed timers handed back after the delivery queue refused them', () => {
    let queueServer: LocalServer;
    let queueAdmin: Redis;
    beforeEach(async () => {
      queueServer = await startPrivateRedis();
      queueAdmin = new Redis(queueServer.url);
    });
    afterEach(async () => {
      // The worker first: its queue connection would wait for the server forever.
      await closeAll();
      queueAdmin.disconnect();
      await queueServer.remove();
    });

    it('fires each at its run time, not when it was handed back', async () => {
      const config = fastTimersConfig({
        TIMERS_REDIS_PREFIX: uniqueName('tgiveback'),
        TIMERS_SCHEDULER_LOOKAHEAD_MS: '3000',
        // A reconciler pass (ZADD GT from MongoDB) would move them back to their time; not within this test.
        TIMERS_RECONCILE_INTERVAL_MS: '60000',
      });
      const mongoDb = uniqueName('timers_giveback');
      const api = await start({ redisUrl, mongoUrl, mongoDb, config, worker: false });
      await start({
        redisUrl,
        mongoUrl,
        mongoDb,
        config,
        worker: true,
        queueRedisUrl: queueServer.url,
      });
      // The queue's Redis is full: it refuses every write (BullMQ's add), reads still work.
      await queueAdmin.config('SET', 'maxmemory', '1');
      const ids = await api.timers.createMany(
        Array.from({ length: 5 }, () => ({ ...inSeconds(2), url: `${receiver.url}/handed-back` })),
      );
      const dueAt = new Map(
        await Promise.all(ids.map(async (id) => [id, Date.parse((await api.timers.get(id)).due_at)] as const)),
      );
      // Claimed ahead (armed), refused by the queue, handed back, claimed again... for most of a second.
      await sleep(800);
      await queueAdmin.config('SET', 'maxmemory', '0');

      expect(await eventually(() => postsTo('handed-back', ids).every((count) => count >= 1), 6_000)).toBe(true);
      await sleep(500);
      expect(postsTo('handed-back', ids)).toEqual([1, 1, 1, 1, 1]);
      const early = ids
        .map((id) => receiver.requestsFor(`/handed-back/${id}`)[0].at - dueAt.get(id)!)
        .filter((lateness) => lateness < 0);
      expect(early).toEqual([]);
    });
  });
});
