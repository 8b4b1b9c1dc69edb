import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Injectable, INestApplicationContext, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import {
  BufferedCollection,
  BufferedIncrementsModule,
  BufferedMongoIncrements,
  FLUSH_QUEUE,
  InjectBufferedIncrements,
} from '@bufferq/buffered-increments';
import { bullmqConnection } from '@bufferq/datastores';
import { FlushProcessor } from '../src/flush.processor';
import { eventually, sleep, testServices, uniqueName } from '@bufferq/testing';

const { redisUrl, mongoUrl } = testServices();

@Injectable()
class ScrapeStatsService {
  constructor(@InjectBufferedIncrements('users') readonly users: BufferedMongoIncrements) {}

  recordRun(userId: string, items: number): Promise<unknown> {
    return Promise.all([
      this.users.increment(userId, 'numberOfRuns', 1),
      this.users.increment(userId, 'numberOfItemsScraped', items),
      this.users.max(userId, 'lastItemScrapedAt', new Date()),
    ]);
  }
}

describe('BufferedIncrementsModule', () => {
  const dbName = uniqueName('bmi_module');
  const bullPrefix = uniqueName('bull');
  const keyPrefix = uniqueName('bmi');
  const collections: BufferedCollection[] = [{ collection: 'users', flushIntervalMs: 400 }];
  let mongo: MongoClient;
  const apps: INestApplicationContext[] = [];

  const rootImports = (prefix = bullPrefix) => [
    BullModule.forRoot({ connection: bullmqConnection(redisUrl), prefix }),
    BufferedIncrementsModule.forRoot({ redis: redisUrl, mongo: { url: mongoUrl, dbName }, defaults: { keyPrefix } }),
  ];

  async function startProducer() {
    @Module({
      imports: [...rootImports(), BufferedIncrementsModule.forFeature(collections)],
      providers: [ScrapeStatsService],
    })
    class ProducerApp {}
    const app = await (await Test.createTestingModule({ imports: [ProducerApp] }).compile()).init();
    apps.push(app);
    return app;
  }

  async function startWorker(
    worker: { collections?: BufferedCollection[]; prefix?: string; flushJobLockMs?: number } = {},
  ) {
    const app = await (
      await Test.createTestingModule({
        imports: [
          ...rootImports(worker.prefix),
          BufferedIncrementsModule.forWorker(worker.collections ?? collections, {
            flushJobLockMs: worker.flushJobLockMs,
          }),
        ],
      }).compile()
    ).init();
    apps.push(app);
    return app;
  }

  async function stopApp(app: INestApplicationContext) {
    apps.splice(apps.indexOf(app), 1);
    await app.close();
  }

  const producerClients: Redis[] = [];

  /** A plain producer on the same buffer as the module's (same key prefix and namespace). */
  function producerOf(collection: string) {
    const client = new Redis(redisUrl);
    producerClients.push(client);
    return new BufferedMongoIncrements(mongo.db(dbName).collection(collection), client, 600_000, {
      keyPrefix,
      autoFlush: false,
    });
  }

  beforeAll(async () => {
    mongo = await new MongoClient(mongoUrl).connect();
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all(producerClients.map((client) => client.quit()));
    await mongo.db(dbName).dropDatabase();
    await mongo.close();
  });

  it('injects a producer per collection that only buffers (apps never flush)', async () => {
    const producer = await startProducer();
    const service = producer.get(ScrapeStatsService);
    await service.recordRun('alice', 40);
    await sleep(900); // two periods, and no worker runs
    expect(await mongo.db(dbName).collection('users').countDocuments()).toBe(0);
    expect((await service.users.stats()).bufferedFields).toBe(3);
  });

  it('runs one flush per period across two workers, and each finishes its flush on shutdown', async () => {
    const producer = apps[0] ?? (await startProducer());
    const service = producer.get(ScrapeStatsService);
    const queue = producer.get<Queue>(getQueueToken(FLUSH_QUEUE));
    const workers = [await startWorker(), await startWorker()];
    expect(await queue.getJobSchedulersCount()).toBe(1);

    const users = mongo.db(dbName).collection('users');
    expect(
      await eventually(async () => (await users.findOne({ _id: 'alice' as never }))?.numberOfRuns === 1, 5_000),
    ).toBe(true);

    const completedBefore = await queue.getCompletedCount();
    const windowMs = 3_000;
    const until = Date.now() + windowMs;
    let runs = 0;
    while (Date.now() < until) {
      await service.recordRun(`user-${runs % 7}`, 2);
      runs += 1;
      await sleep(5);
    }
    const flushes = (await queue.getCompletedCount()) - completedBefore;
    // Two replicas, one schedule: about windowMs / period flushes in total, not twice that.
    expect(flushes).toBeGreaterThanOrEqual(windowMs / 400 - 3);
    expect(flushes).toBeLessThanOrEqual(windowMs / 400 + 2);

    // Shut both workers down; they finish the flush they are in, and the next one drains the rest.
    await Promise.all(workers.map((worker) => worker.close()));
    apps.splice(apps.indexOf(workers[0]), 1);
    apps.splice(apps.indexOf(workers[1]), 1);
    const redis = new Redis(redisUrl);
    expect(await redis.keys(`${keyPrefix}:*draining*`)).toEqual([]);
    await redis.quit();
    const finalWorker = await startWorker();
    expect(
      await eventually(async () => {
        const docs = await users.find({ _id: { $ne: 'alice' as never } }).toArray();
        return docs.reduce((sum, doc) => sum + doc.numberOfRuns, 0) === runs;
      }, 5_000),
    ).toBe(true);
    const docs = await users.find({ _id: { $ne: 'alice' as never } }).toArray();
    expect(docs.reduce((sum, doc) => sum + doc.numberOfItemsScraped, 0)).toBe(runs * 2);
    expect(docs.every((doc) => doc.lastItemScrapedAt instanceof Date)).toBe(true);
    await finalWorker.close();
    apps.splice(apps.indexOf(finalWorker), 1);
  });

  it('flushes every buffer of a collection written by two namespaces, each on its own schedule', async () => {
    const prefix = uniqueName('bull');
    const shared: BufferedCollection[] = [
      { collection: 'accounts', flushIntervalMs: 200, options: { namespace: uniqueName('activity') } },
      { collection: 'accounts', flushIntervalMs: 200, options: { namespace: uniqueName('billing') } },
    ];
    const worker = await startWorker({ collections: shared, prefix });
    const [activity, billing] = shared.map((feature) => {
      const client = new Redis(redisUrl);
      producerClients.push(client);
      return new BufferedMongoIncrements(mongo.db(dbName).collection('accounts'), client, 600_000, {
        ...feature.options,
        keyPrefix,
        autoFlush: false,
      });
    });
    await activity.increment('acme', 'runs', 2);
    await billing.increment('acme', 'credits', 7);
    const accounts = mongo.db(dbName).collection('accounts');
    expect(
      await eventually(async () => {
        const doc = await accounts.findOne({ _id: 'acme' as never });
        return doc?.runs === 2 && doc?.credits === 7;
      }, 5_000),
    ).toBe(true);
    await stopApp(worker);
  });

  it('runs one job scheduler per shard of a sharded buffer and flushes every shard', async () => {
    const prefix = uniqueName('bull');
    const sharded: BufferedCollection[] = [
      { collection: 'events', flushIntervalMs: 200, options: { namespace: uniqueName('events'), shards: 3 } },
    ];
    const worker = await startWorker({ collections: sharded, prefix });
    const schedulers = await worker.get<Queue>(getQueueToken(FLUSH_QUEUE)).getJobSchedulers();
    expect(schedulers.map((scheduler) => scheduler.key).sort()).toEqual(
      [0, 1, 2]
        .map((shard) =>
          shard === 0 ? `flush-${sharded[0].options!.namespace}` : `flush-${sharded[0].options!.namespace}:${shard}`,
        )
        .sort(),
    );
    const client = new Redis(redisUrl);
    producerClients.push(client);
    const producer = new BufferedMongoIncrements(mongo.db(dbName).collection('events'), client, 600_000, {
      ...sharded[0].options,
      keyPrefix,
      autoFlush: false,
    });
    await Promise.all(Array.from({ length: 30 }, (_, i) => producer.increment(`e${i}`, 'n', 1)));
    const events = mongo.db(dbName).collection('events');
    expect(await eventually(async () => (await events.countDocuments({ n: 1 })) === 30, 5_000)).toBe(true);
    await stopApp(worker);
  });

  it('takes the flush period and shard count from forRoot defaults when a collection sets none', async () => {
    const prefix = uniqueName('bull');
    const namespace = uniqueName('visits');
    const app = await (
      await Test.createTestingModule({
        imports: [
          BullModule.forRoot({ connection: bullmqConnection(redisUrl), prefix }),
          BufferedIncrementsModule.forRoot({
            redis: redisUrl,
            mongo: { url: mongoUrl, dbName },
            flushIntervalMs: 250,
            defaults: { keyPrefix, shards: 2 },
          }),
          BufferedIncrementsModule.forWorker([{ collection: 'visits', options: { namespace } }]),
        ],
      }).compile()
    ).init();
    apps.push(app);
    const schedulers = await app.get<Queue>(getQueueToken(FLUSH_QUEUE)).getJobSchedulers();
    expect(schedulers.map((scheduler) => [scheduler.key, Number(scheduler.every)]).sort()).toEqual([
      [`flush-${namespace}`, 250],
      [`flush-${namespace}:1`, 250],
    ]);
    await stopApp(app);
  });

  it("locks flush jobs for forRoot's flushJobLockMs, which forWorker's own option overrides", async () => {
    const lockOf = async (rootLockMs: number, workerLockMs?: number) => {
      const app = await (
        await Test.createTestingModule({
          imports: [
            BullModule.forRoot({ connection: bullmqConnection(redisUrl), prefix: uniqueName('bull') }),
            BufferedIncrementsModule.forRoot({
              redis: redisUrl,
              mongo: { url: mongoUrl, dbName },
              flushJobLockMs: rootLockMs,
              defaults: { keyPrefix },
            }),
            BufferedIncrementsModule.forWorker([{ collection: 'locks', flushIntervalMs: 60_000 }], {
              flushJobLockMs: workerLockMs,
            }),
          ],
        }).compile()
      ).init();
      const lockDuration = app.get(FlushProcessor).worker.opts.lockDuration;
      await app.close();
      return lockDuration;
    };
    expect(await lockOf(4_321)).toBe(4_321);
    expect(await lockOf(4_321, 2_345)).toBe(2_345);
  });

  it('refuses at boot two buffers of one collection that would share a name', () => {
    expect(() =>
      BufferedIncrementsModule.forWorker([
        { collection: 'accounts', flushIntervalMs: 200 },
        { collection: 'accounts', flushIntervalMs: 500 },
      ]),
    ).toThrow(/own options.namespace/);
  });

  it('enqueues an early flush job when a producer buffer is full', async () => {
    @Module({
      imports: [
        ...rootImports(),
        BufferedIncrementsModule.forFeature([
          { collection: 'tiny', flushIntervalMs: 600_000, options: { maxBufferedFields: 5 } },
        ]),
      ],
    })
    class TinyProducerApp {}
    const app = await (await Test.createTestingModule({ imports: [TinyProducerApp] }).compile()).init();
    apps.push(app);
    const tiny = app.get<BufferedMongoIncrements>('BufferedMongoIncrements:tiny');
    const queue = app.get<Queue>(getQueueToken(FLUSH_QUEUE));
    for (let i = 0; i < 6; i++) await tiny.increment(`d${i}`, 'n', 1);
    expect(await eventually(async () => (await queue.getJob('early-flush-tiny')) !== undefined, 3_000)).toBe(true);
    expect((await queue.getJob('early-flush-tiny'))?.data).toEqual({ collection: 'tiny' });
  });

  // BullMQ's upsert recomputes the next run when the period changes; this pins that we rely on it.
  it('starts a changed flush period at once instead of waiting for the old schedule', async () => {
    const prefix = uniqueName('bull');
    // A previous deployment flushed hourly; its worker ran the first job, so the next waits for the hour.
    const hourly = await startWorker({ prefix, collections: [{ collection: 'periodic', flushIntervalMs: 3_600_000 }] });
    const queue = hourly.get<Queue>(getQueueToken(FLUSH_QUEUE));
    expect(await eventually(async () => (await queue.getCompletedCount()) >= 1, 5_000)).toBe(true);
    await stopApp(hourly);

    const producer = producerOf('periodic');
    await producer.increment('p', 'n', 5);
    const worker = await startWorker({ prefix, collections: [{ collection: 'periodic', flushIntervalMs: 300 }] });
    const scheduler = await worker.get<Queue>(getQueueToken(FLUSH_QUEUE)).getJobScheduler('flush-periodic');
    expect(Number(scheduler?.every)).toBe(300);
    const periodic = mongo.db(dbName).collection('periodic');
    expect(await eventually(async () => (await periodic.findOne({ _id: 'p' as never }))?.n === 5, 3_000)).toBe(true);
    await stopApp(worker);
  });

  it('runs the next flush within about two job locks after a worker dies in the middle of a flush', async () => {
    const prefix = uniqueName('bull');
    const lockMs = 1_000;
    const producer = producerOf('crashy');
    await producer.increment('c', 'n', 7);
    // Another flusher holds the buffer's lock, so the child's flush job waits inside process() until killed.
    const redis = new Redis(redisUrl);
    await redis.set(`${keyPrefix}:{${producer.namespace}}:lock`, 'someone-else', 'PX', 60_000);
    const child = spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        '-r',
        'tsconfig-paths/register',
        join(__dirname, 'fixtures', 'flush-worker.ts'),
        redisUrl,
        mongoUrl,
        dbName,
        prefix,
        keyPrefix,
        'crashy',
        '300',
        String(lockMs),
      ],
      {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, TS_NODE_PROJECT: join(__dirname, '..', '..', '..', 'tsconfig.json') },
      },
    );
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const queue = new Queue(FLUSH_QUEUE, { connection: bullmqConnection(redisUrl), prefix });
    try {
      expect(await eventually(async () => (await queue.getActiveCount()) === 1, 30_000)).toBe(true);
      child.kill('SIGKILL');
      await exited;
      await redis.del(`${keyPrefix}:{${producer.namespace}}:lock`);
      const killedAt = Date.now();
      const worker = await startWorker({
        prefix,
        collections: [{ collection: 'crashy', flushIntervalMs: 300 }],
        flushJobLockMs: lockMs,
      });
      const crashy = mongo.db(dbName).collection('crashy');
      expect(await eventually(async () => (await crashy.findOne({ _id: 'c' as never }))?.n === 7, 10_000)).toBe(true);
      // The dead worker's job held the queue (one flush at a time) until its lock lapsed.
      expect(Date.now() - killedAt).toBeLessThan(4 * lockMs + 2_000);
      await stopApp(worker);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      producer.destroy();
      await queue.close();
      await redis.quit();
    }
  });
});
