import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { ObjectId } from 'mongodb';
import { DueIndex } from '../src/storage/due-index/due-index';
import { TIMERS_COLLECTION } from '../src/storage/timers.repository';
import {
  eventually,
  LocalServer,
  sleep,
  startPrivateRedis,
  testServices,
  uniqueName,
  WebhookReceiver,
} from '@bufferq/testing';
import { fastTimersConfig, startTimers, TimersContext } from './fixtures/timers-harness';

const now = () => ({ hours: 0, minutes: 0, seconds: 0 });
const inSeconds = (seconds: number) => ({ hours: 0, minutes: 0, seconds });

/** Every id was requested exactly once (path `/<prefix>/<id>`). */
function deliveryCounts(receiver: WebhookReceiver, prefix: string, ids: string[]): number[] {
  return ids.map((id) => receiver.requestsFor(`/${prefix}/${id}`).length);
}

describe('timers survive worker downtime, Redis data loss and concurrent workers', () => {
  const { redisUrl, mongoUrl } = testServices();
  let receiver: WebhookReceiver;
  const open: TimersContext[] = [];
  const start = async (options: Parameters<typeof startTimers>[0]) => {
    const ctx = await startTimers(options);
    open.push(ctx);
    return ctx;
  };

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
  });
  afterEach(async () => {
    for (const ctx of open.splice(0).reverse()) {
      await ctx.db.dropDatabase().catch(() => undefined);
      await ctx.close();
    }
  });
  afterAll(() => receiver.stop());

  it('fires each timer that fell due while no worker ran exactly once, right after a worker starts', async () => {
    const services = {
      redisUrl,
      mongoUrl,
      mongoDb: uniqueName('timers_down'),
      config: fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('tdown') }),
    };
    const api = await start({ ...services, worker: false });
    const ids = await api.timers.createMany(
      Array.from({ length: 25 }, () => ({ ...inSeconds(1), url: `${receiver.url}/down` })),
    );
    await sleep(1_600);
    expect(deliveryCounts(receiver, 'down', ids)).toEqual(ids.map(() => 0));

    const startedAt = Date.now();
    await start({ ...services, worker: true });
    expect(await eventually(() => deliveryCounts(receiver, 'down', ids).every((count) => count >= 1), 5_000)).toBe(
      true,
    );
    const lastDelivery = Math.max(...ids.map((id) => receiver.requestsFor(`/down/${id}`)[0].at));
    expect(lastDelivery - startedAt).toBeLessThan(1_500);
    await sleep(800); // reconciler passes run meanwhile: still exactly once
    expect(deliveryCounts(receiver, 'down', ids)).toEqual(ids.map(() => 1));
    expect((await api.timers.list({ status: 'delivered', limit: 100 })).items).toHaveLength(25);
  });

  it('fires every pending timer after Redis lost all its data', async () => {
    const redis = await startPrivateRedis();
    try {
      const worker = await start({
        redisUrl: redis.url,
        mongoUrl,
        mongoDb: uniqueName('timers_flush'),
        config: fastTimersConfig({ TIMERS_REDIS_PREFIX: 'timers' }),
        worker: true,
      });
      // Due after the scheduler's lookahead (1 s), so none is claimed before the index is counted and wiped.
      const ids = await worker.timers.createMany(
        Array.from({ length: 30 }, (_, i) => ({
          ...inSeconds(2 + (i % 2)),
          url: `${receiver.url}/flushed`,
        })),
      );
      expect(await worker.app.get(DueIndex).size()).toBe(30);
      await worker.redis.flushall();
      expect(await worker.app.get(DueIndex).size()).toBe(0);

      expect(await eventually(() => deliveryCounts(receiver, 'flushed', ids).every((count) => count >= 1), 8_000)).toBe(
        true,
      );
      await sleep(600);
      expect(deliveryCounts(receiver, 'flushed', ids)).toEqual(ids.map(() => 1));
    } finally {
      await closeAll(open);
      await redis.remove();
    }
  });

  it('keeps a timer created while Redis is down and fires it once Redis is back', async () => {
    const redis: LocalServer = await startPrivateRedis();
    try {
      const worker = await start({
        redisUrl: redis.url,
        mongoUrl,
        mongoDb: uniqueName('timers_redis_down'),
        config: fastTimersConfig({ TIMERS_REDIS_PREFIX: 'timers' }),
        worker: true,
      });
      await redis.stop();
      // Due in a second, so it still shows `pending` (a due one shows `delivering`).
      const { id } = await worker.timers.create({ ...inSeconds(1), url: `${receiver.url}/outage` });
      expect((await worker.timers.get(id)).status).toBe('pending');
      await redis.start();
      expect(await eventually(() => receiver.requestsFor(`/outage/${id}`).length === 1, 10_000)).toBe(true);
      expect(await eventually(async () => (await worker.timers.get(id)).status === 'delivered', 3_000)).toBe(true);
    } finally {
      await closeAll(open);
      await redis.remove();
    }
  });

  it('recovers timers a scheduler claimed from the index but died before queueing, once their lease lapses', async () => {
    const services = {
      redisUrl,
      mongoUrl,
      mongoDb: uniqueName('timers_claim'),
      config: fastTimersConfig({
        TIMERS_REDIS_PREFIX: uniqueName('tclaim'),
        TIMERS_DELIVERY_LOCK_MS: '1000',
      }),
    };
    const api = await start({ ...services, worker: false });
    const ids = await api.timers.createMany(
      Array.from({ length: 10 }, () => ({ ...now(), url: `${receiver.url}/claimed` })),
    );
    // What a scheduler does before it crashes: the timers leave the index and never reach the queue.
    const claimed = await api.app.get(DueIndex).claimDue(Date.now(), 100);
    expect(claimed.map((timer) => timer.id).sort()).toEqual([...ids].sort());

    await start({ ...services, worker: true });
    expect(await eventually(() => deliveryCounts(receiver, 'claimed', ids).every((count) => count === 1), 5_000)).toBe(
      true,
    );
  });

  it('after a lapsed lease, skips a timer whose delivered outcome the dead worker recorded and sends the others once', async () => {
    const services = {
      redisUrl,
      mongoUrl,
      mongoDb: uniqueName('timers_lapsed'),
      config: fastTimersConfig({
        TIMERS_REDIS_PREFIX: uniqueName('tlapsed'),
        TIMERS_DELIVERY_LOCK_MS: '1000',
      }),
    };
    const api = await start({ ...services, worker: false });
    const ids = await api.timers.createMany(
      Array.from({ length: 4 }, () => ({ ...now(), url: `${receiver.url}/lapsed` })),
    );
    // A worker claims the batch, sends it, records the first timer's outcome in MongoDB and dies before
    // it settles it in Redis or records the others.
    const claimed = await api.app.get(DueIndex).claimDue(Date.now(), 100);
    expect(claimed).toHaveLength(4);
    const [recorded, ...unrecorded] = ids;
    await api.db
      .collection(TIMERS_COLLECTION)
      .updateOne(
        { _id: ObjectId.createFromHexString(recorded) },
        { $set: { status: 'delivered', deliveredAt: new Date() }, $inc: { attempts: 1 } },
      );

    await start({ ...services, worker: true });
    expect(
      await eventually(() => deliveryCounts(receiver, 'lapsed', unrecorded).every((count) => count === 1), 6_000),
    ).toBe(true);
    await sleep(800);
    expect(deliveryCounts(receiver, 'lapsed', ids)).toEqual([0, 1, 1, 1]);
    expect(
      await eventually(
        async () => (await api.timers.list({ status: 'delivered', limit: 10 })).items.length === 4,
        3_000,
      ),
    ).toBe(true);
    expect((await api.timers.get(recorded)).attempts).toBe(1);
  });

  it('does not re-add a timer delivered while a reconciler pass read it as pending', async () => {
    const services = {
      redisUrl,
      mongoUrl,
      mongoDb: uniqueName('timers_race'),
      config: fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('trace') }),
    };
    const worker = await start({ ...services, worker: true });
    const dueIndex = worker.app.get(DueIndex);
    const { id } = await worker.timers.create({ ...now(), url: `${receiver.url}/race` });
    const { due_at: dueAt } = await worker.timers.get(id);
    expect(await eventually(async () => (await worker.timers.get(id)).status === 'delivered', 3_000)).toBe(true);
    // What a pass that read MongoDB before the delivery was recorded would write now.
    const stale = {
      id,
      runAt: Date.parse(dueAt),
      staged: { url: `${receiver.url}/race`, attempts: 0 },
    };
    expect(await dueIndex.reconcile([stale], Date.now() - 60_000)).toBe(0);
    await sleep(500);
    expect(receiver.requestsFor(`/race/${id}`)).toHaveLength(1);
  });

  it('delivers again, with the same delivery id, a timer whose worker was killed mid-delivery', async () => {
    const config = fastTimersConfig({
      TIMERS_REDIS_PREFIX: uniqueName('tkill'),
      TIMERS_DELIVERY_LOCK_MS: '1000',
      TIMERS_DELIVERY_TIMEOUT_MS: '30000',
    });
    const services = { redisUrl, mongoUrl, mongoDb: uniqueName('timers_kill'), config };
    const api = await start({ ...services, worker: false });
    const child = await startWorkerProcess(services);
    try {
      receiver.behaviour = (request, count) => (request.path.startsWith('/killed/') && count === 1 ? 'hang' : 200);
      const { id } = await api.timers.create({ ...now(), url: `${receiver.url}/killed` });
      expect(await eventually(() => receiver.requestsFor(`/killed/${id}`).length === 1, 10_000)).toBe(true);
      child.kill('SIGKILL');
      await once(child, 'exit');
      expect((await api.timers.get(id)).status).toBe('delivering');

      await start({ ...services, worker: true });
      expect(await eventually(() => receiver.requestsFor(`/killed/${id}`).length === 2, 10_000)).toBe(true);
      const deliveryIds = receiver.requestsFor(`/killed/${id}`).map((request) => request.headers['webhook-id']);
      expect(deliveryIds).toEqual([id, id]);
      expect(await eventually(async () => (await api.timers.get(id)).status === 'delivered', 3_000)).toBe(true);
      // The killed attempt's outcome was never recorded, so only the second one counts.
      expect((await api.timers.get(id)).attempts).toBe(1);
    } finally {
      child.kill('SIGKILL');
      receiver.behaviour = () => 200;
    }
  });

  it('sends once, after their leases lapse, the timers a worker held for their run time when it was killed', async () => {
    const config = fastTimersConfig({
      TIMERS_REDIS_PREFIX: uniqueName('tarmed'),
      TIMERS_DELIVERY_LOCK_MS: '1000',
      TIMERS_SCHEDULER_LOOKAHEAD_MS: '3000',
    });
    const services = { redisUrl, mongoUrl, mongoDb: uniqueName('timers_armed'), config };
    const api = await start({ ...services, worker: false });
    const child = await startWorkerProcess(services);
    try {
      const ids = await api.timers.createMany(
        Array.from({ length: 5 }, () => ({ ...inSeconds(2), url: `${receiver.url}/held` })),
      );
      const armed = async () => (await api.app.get(DueIndex).stats()).armed;
      expect(await eventually(async () => (await armed()) === 5, 2_000)).toBe(true);
      child.kill('SIGKILL');
      await once(child, 'exit');

      await start({ ...services, worker: true });
      expect(await eventually(() => deliveryCounts(receiver, 'held', ids).every((count) => count === 1), 8_000)).toBe(
        true,
      );
      await sleep(500);
      expect(deliveryCounts(receiver, 'held', ids)).toEqual([1, 1, 1, 1, 1]);
      expect(await armed()).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('sends the timers it holds for their run time when it shuts down gracefully, and records them', async () => {
    const config = fastTimersConfig({
      TIMERS_REDIS_PREFIX: uniqueName('tstop'),
      TIMERS_SCHEDULER_LOOKAHEAD_MS: '3000',
    });
    const services = { redisUrl, mongoUrl, mongoDb: uniqueName('timers_stop'), config };
    const api = await start({ ...services, worker: false });
    const worker = await startTimers({ ...services, worker: true });
    const ids = await api.timers.createMany(
      Array.from({ length: 5 }, () => ({ ...inSeconds(1.5), url: `${receiver.url}/stopping` })),
    );
    const armed = async () => (await api.app.get(DueIndex).stats()).armed;
    expect(await eventually(async () => (await armed()) === 5, 2_000)).toBe(true);
    // Shutdown waits for the armed timers' run time (at most the lookahead), sends them, records them.
    await worker.close();
    expect(deliveryCounts(receiver, 'stopping', ids)).toEqual([1, 1, 1, 1, 1]);
    const views = await Promise.all(ids.map((id) => api.timers.get(id)));
    expect(views.map((view) => [view.status, view.attempts, view.last_error])).toEqual(
      ids.map(() => ['delivered', 1, null]),
    );
  });

  it('delivers each timer once when two workers share the schedule', async () => {
    // Ten deliveries in flight per worker: FerretDB (SQLite) stalls when two clients send ~150 concurrent
    // writes; real MongoDB does not need this.
    const config = fastTimersConfig({
      TIMERS_REDIS_PREFIX: uniqueName('ttwo'),
      TIMERS_SCHEDULER_BATCH: '7',
      TIMERS_DELIVERY_CONCURRENCY: '10',
    });
    const services = { redisUrl, mongoUrl, mongoDb: uniqueName('timers_two'), config };
    const first = await start({ ...services, worker: true });
    await start({ ...services, worker: true });
    const ids: string[] = [];
    for (let second = 0; second < 3; second++) {
      ids.push(
        ...(await first.timers.createMany(
          Array.from({ length: 50 }, () => ({ ...inSeconds(second), url: `${receiver.url}/two` })),
        )),
      );
    }
    expect(await eventually(() => deliveryCounts(receiver, 'two', ids).every((count) => count >= 1), 20_000)).toBe(
      true,
    );
    await sleep(800);
    const counts = deliveryCounts(receiver, 'two', ids);
    expect(counts.filter((count) => count !== 1)).toEqual([]);
  });
});

/** A timers worker in its own process (so a test can SIGKILL it); resolves once it runs. */
async function startWorkerProcess(services: object): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '-r',
      'ts-node/register/transpile-only',
      '-r',
      'tsconfig-paths/register',
      join(__dirname, 'fixtures', 'timers-worker-child.ts'),
    ],
    {
      env: { ...process.env, TIMERS_CHILD_OPTIONS: JSON.stringify(services) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  if (!(await eventually(() => output.includes('ready'), 30_000))) {
    child.kill('SIGKILL');
    throw new Error('the worker process did not start');
  }
  return child;
}

async function closeAll(open: TimersContext[]): Promise<void> {
  for (const ctx of open.splice(0).reverse()) {
    await ctx.db.dropDatabase().catch(() => undefined);
    await ctx.close();
  }
}
