import { BullModule, getQueueToken } from '@nestjs/bullmq';
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

  const rootImports = () => [
    BullModule.forRoot({ connection: bullmqConnection(redisUrl), prefix: bullPrefix }),
    BufferedIncrementsModule.forRoot({ redis: redisUrl, mongo: { url: mongoUrl, dbName }, defaults: { keyPrefix } }),
  ];

  async function startProducer() {
    @Module({ imports: [...rootImports(), BufferedIncrementsModule.forFeature(collections)], providers: [ScrapeStatsService] })
    class ProducerApp {}
    const app = await (await Test.createTestingModule({ imports: [ProducerApp] }).compile()).init();
    apps.push(app);
    return app;
  }

  async function startWorker() {
    const app = await (await Test.createTestingModule({ imports: [...rootImports(), BufferedIncrementsModule.forWorker(collections)] }).compile()).init();
    apps.push(app);
    return app;
  }

  beforeAll(async () => {
    mongo = await new MongoClient(mongoUrl).connect();
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
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
    expect(await eventually(async () => (await users.findOne({ _id: 'alice' as never }))?.numberOfRuns === 1, 5_000)).toBe(true);

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

  it('enqueues an early flush job when a producer buffer is full', async () => {
    @Module({
      imports: [...rootImports(), BufferedIncrementsModule.forFeature([{ collection: 'tiny', flushIntervalMs: 600_000, options: { maxBufferedFields: 5 } }])],
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
});
