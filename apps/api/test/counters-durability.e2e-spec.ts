import { ChildProcess } from 'node:child_process';
import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import {
  eventually,
  FaultProxy,
  freePort,
  LocalServer,
  sleep,
  startPrivateMongo,
  startPrivateRedis,
  testServices,
  uniqueName,
} from '@bufferq/testing';
import { spawnApp, startApi, startWorker } from './api-harness';

// Read once: the api builds below overwrite REDIS_URL in process.env (e.g. with a private server).
const { mongoUrl, redisUrl } = testServices();
const FLUSH_QUEUE = '{buffered-increments-flush}';

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Sums of what the counters collection holds, by key. */
async function totalsIn(mongo: MongoClient, dbName: string): Promise<Record<string, number>> {
  const documents = await mongo.db(dbName).collection('counters').find().toArray();
  return sortedKeys(Object.fromEntries(documents.map((document) => [String(document._id), document.value as number])));
}

describe('counters durability (e2e)', () => {
  let redis: LocalServer;
  let mongo: MongoClient;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    // A private Redis: the flush schedules of these tests must not meet other test files' workers.
    redis = await startPrivateRedis({ appendOnly: true });
    mongo = await new MongoClient(mongoUrl).connect();
  });

  afterAll(async () => {
    await Promise.all(children.map((child) => killed(child)));
    await mongo.close();
    await redis.remove();
  });

  it('loses no accepted increment when api and worker are killed with SIGKILL before a flush, then restarted', async () => {
    const dbName = uniqueName('restart');
    const port = await freePort();
    const env = {
      REDIS_URL: redis.url,
      MONGO_URL: mongoUrl,
      MONGO_DB: dbName,
      PORT: String(port),
      HOST: '127.0.0.1',
      RATE_LIMIT_MAX: '0',
      BOARD_ENABLED: 'false',
      COUNTERS_FLUSH_INTERVAL_MS: '600000',
    };
    const base = `http://127.0.0.1:${port}`;
    const start = (app: 'api' | 'worker', extra: Record<string, string> = {}) => {
      const child = spawnApp(app, { ...env, ...extra });
      children.push(child);
      return child;
    };
    const apiAnswers = async () =>
      eventually(async () => (await fetch(`${base}/health`).catch(() => null))?.ok === true, 60_000, 100);
    const queue = new Queue(FLUSH_QUEUE, { connection: { url: redis.url } });
    const scheduledEvery = async () =>
      (await queue.getJobSchedulers()).find((scheduler) => scheduler.key === 'flush-counters')?.every;

    let api = start('api');
    let worker = start('worker');
    expect(await apiAnswers()).toBe(true);
    // The worker is up once it has registered its (ten-minute) flush schedule; its first run passes.
    expect(await eventually(async () => Number(await scheduledEvery()) === 600_000, 60_000, 100)).toBe(true);
    await sleep(1_000);

    const expected: Record<string, number> = {};
    for (let i = 0; i < 120; i++) {
      const key = `key-${i % 12}`;
      const value = (i % 7) - 2;
      const response = await fetch(`${base}/api/v1/increment`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key, value }),
      });
      expect(response.status).toBe(202);
      expected[key] = (expected[key] ?? 0) + value;
    }
    expect(await mongo.db(dbName).collection('counters').countDocuments()).toBe(0); // nothing flushed yet
    await Promise.all([killed(api), killed(worker)]);

    api = start('api');
    worker = start('worker');
    expect(await apiAnswers()).toBe(true);
    // Read-your-writes holds at once, before the restarted worker flushes.
    const read = await (await fetch(`${base}/api/v1/increment/key-3`)).json();
    expect(read).toEqual({ key: 'key-3', value: expected['key-3'] });
    // The same flush job a producer enqueues when its buffer is full, instead of waiting ten minutes.
    await queue.add('flush', { collection: 'counters' }, { removeOnComplete: true, removeOnFail: true });
    const flushed = await eventually(
      async () => JSON.stringify(await totalsIn(mongo, dbName)) === JSON.stringify(sortedKeys(expected)),
      60_000,
      200,
    );
    expect(await totalsIn(mongo, dbName)).toEqual(expected);
    expect(flushed).toBe(true);
    await queue.close();
    // A graceful stop this time: a worker killed during a flush job holds the queue's single flush
    // slot until BullMQ declares the job stalled, which would hold up the next test's flushes.
    await Promise.all([stopped(api), stopped(worker)]);
    await mongo.db(dbName).dropDatabase();
  }, 180_000);

  describe('while MongoDB is stopped under load', () => {
    let privateMongo: LocalServer;
    let privateRedis: LocalServer;
    let api: NestFastifyApplication;
    let worker: INestApplicationContext;
    const dbName = uniqueName('outage');

    beforeAll(async () => {
      privateMongo = await startPrivateMongo();
      // Its own Redis, so its flush schedule starts fresh (BullMQ keeps a schedule's old alignment when
      // its interval changes, which would delay the first flush by up to the previous test's interval).
      privateRedis = await startPrivateRedis();
      const env = {
        REDIS_URL: privateRedis.url,
        MONGO_URL: privateMongo.url,
        RATE_LIMIT_MAX: '0',
        COUNTERS_FLUSH_INTERVAL_MS: '200',
      };
      api = await startApi(dbName, env);
      worker = await startWorker(dbName, env);
    });

    afterAll(async () => {
      await worker?.close();
      await api?.close();
      await privateMongo?.remove();
      await privateRedis?.remove();
    });

    it('keeps accepting increments (202) and holds exact totals in MongoDB once it is back', async () => {
      const http = () => request(api.getHttpServer());
      const expected: Record<string, number> = {};
      const statuses: number[] = [];
      let sending = true;
      const client = async (id: number) => {
        for (let i = 0; sending; i++) {
          const key = `k${(id * 7 + i) % 25}`;
          const value = ((id + i) % 9) - 3;
          const response = await http().post('/api/v1/increment').send({ key, value });
          statuses.push(response.status);
          if (response.status === 202) expected[key] = (expected[key] ?? 0) + value;
          await sleep(5);
        }
      };
      const load = Promise.all(Array.from({ length: 8 }, (_, id) => client(id)));
      await sleep(800);
      await privateMongo.stop();
      const acceptedBeforeOutage = statuses.length;
      await sleep(2_000);
      // Reads need MongoDB: they answer 503 (retry later), never a wrong number.
      await http().get('/api/v1/increment/k1').expect(503);
      await privateMongo.start();
      await sleep(800);
      sending = false;
      await load;

      expect(statuses.length).toBeGreaterThan(acceptedBeforeOutage + 50); // load went on during the outage
      expect(new Set(statuses)).toEqual(new Set([202]));
      const check = await new MongoClient(privateMongo.url).connect();
      try {
        const exact = await eventually(
          async () => JSON.stringify(await totalsIn(check, dbName)) === JSON.stringify(sortedKeys(expected)),
          60_000,
          250,
        );
        expect(await totalsIn(check, dbName)).toEqual(expected);
        expect(exact).toBe(true);
      } finally {
        await check.close();
      }
      const read = await http().get('/api/v1/increment/k1').expect(200);
      expect(read.body.value).toBe(expected.k1 ?? 0);
    }, 180_000);
  });
});

describe('counters while Redis is stopped (e2e)', () => {
  let privateRedis: LocalServer;
  let api: NestFastifyApplication;
  const dbName = uniqueName('redis_outage');

  beforeAll(async () => {
    // Append-only, as in production: what was accepted before the stop is there after the restart.
    privateRedis = await startPrivateRedis({ appendOnly: true });
    api = await startApi(dbName, { REDIS_URL: privateRedis.url, RATE_LIMIT_MAX: '100' });
  });

  afterAll(async () => {
    await api?.close();
    await privateRedis?.remove();
    const mongo = await new MongoClient(mongoUrl).connect();
    await mongo.db(dbName).dropDatabase();
    await mongo.close();
  });

  it('answers 503 with retry-after (never 500, never a partial read) and recovers when Redis returns', async () => {
    const http = () => request(api.getHttpServer());
    await http().post('/api/v1/increment').send({ key: 'k', value: 5 }).expect(202);
    await privateRedis.stop();
    const refused = await http().post('/api/v1/increment').send({ key: 'k', value: 100 }).expect(503);
    expect(refused.headers['retry-after']).toBe('1');
    await http()
      .post('/api/v1/increment')
      .send({ increments: [{ key: 'k', value: 100 }] })
      .expect(503);
    await http().get('/api/v1/increment/k').expect(503);
    await http().get('/health').expect(200);
    const ready = await http().get('/health/ready').expect(503);
    expect(ready.body.error.redis.status).toBe('down');
    await privateRedis.start();
    expect(
      await eventually(
        async () => (await http().post('/api/v1/increment').send({ key: 'k', value: 1 })).status === 202,
        15_000,
        100,
      ),
    ).toBe(true);
    await http().get('/api/v1/increment/k').expect(200, { key: 'k', value: 6 });
  });
});

describe("counters when the api's Redis connections go silent (e2e)", () => {
  let proxy: FaultProxy;
  let api: NestFastifyApplication;
  const dbName = uniqueName('silent_redis');

  beforeAll(async () => {
    proxy = await new FaultProxy(Number(new URL(redisUrl).port)).start();
    api = await startApi(dbName, { REDIS_URL: proxy.url, REDIS_REPLY_TIMEOUT_MS: '300' });
  });

  afterAll(async () => {
    // BullMQ's connections would be found silent only after REDIS_REPLY_TIMEOUT_MS plus 10 s (its workers
    // block on theirs): cut them so the api closes at once.
    proxy?.cutAll();
    await api?.close();
    await proxy?.stop();
    const mongo = await new MongoClient(mongoUrl).connect();
    await mongo.db(dbName).dropDatabase();
    await mongo.close();
  });

  it('accepts an increment made while its Redis client reconnects (a blip refuses nothing)', async () => {
    const http = () => request(api.getHttpServer());
    // The app was built from a fresh module registry (see startApi): its token is that registry's.
    const { REDIS_CLIENT } = await import('@bufferq/datastores');
    const redis = api.get<Redis>(REDIS_CLIENT);
    await http().post('/api/v1/increment').send({ key: 'blip', value: 1 }).expect(202);
    // A connection reset: the client is away for its first reconnect delay (100 ms).
    proxy.cutAll();
    expect(await eventually(() => redis.status === 'reconnecting', 5_000, 1)).toBe(true);
    await http().post('/api/v1/increment').send({ key: 'blip', value: 10 }).timeout(5_000).expect(202);
    await http().get('/api/v1/increment/blip').timeout(5_000).expect(200, { key: 'blip', value: 11 });
  });

  it('accepts an increment sent while its connection went silent (no reset), and counts it once', async () => {
    const http = () => request(api.getHttpServer());
    await http().post('/api/v1/increment').send({ key: 'k', value: 1 }).expect(202);
    // Every open connection now moves nothing either way and never closes, as when Redis's host vanished.
    proxy.silenceAll();
    await http().post('/api/v1/increment').send({ key: 'k', value: 10 }).timeout(5_000).expect(202);
    await http().get('/api/v1/increment/k').timeout(5_000).expect(200, { key: 'k', value: 11 });
  });
});

function sortedKeys(record: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
