import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import { eventually, LocalServer, startPrivateRedis, testServices, uniqueName } from '@bufferq/testing';
import { startApi, startWorker } from './api-harness';

const { mongoUrl } = testServices();

/** A metric's value for one label set in a Prometheus text exposition, NaN when absent. */
function metricValue(exposition: string, name: string, labels: string): number {
  const line = exposition.split('\n').find((row) => row.startsWith(`${name}{${labels}} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('counters buffer limits and dead letters (e2e)', () => {
  let redis: LocalServer;
  let mongo: MongoClient;
  const apps: Array<NestFastifyApplication | INestApplicationContext> = [];

  beforeAll(async () => {
    // A private Redis: flush jobs of the shared queue would otherwise go to other test files' workers.
    redis = await startPrivateRedis();
    mongo = await new MongoClient(mongoUrl).connect();
  });

  afterEach(async () => {
    // A worker left running would take the next test's flush jobs (one queue, one scheduler per collection).
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await mongo.close();
    await redis.remove();
  });

  async function api(dbName: string, env: Record<string, string> = {}) {
    try {
      const app = await startApi(dbName, { REDIS_URL: redis.url, RATE_LIMIT_MAX: '0', ...env });
      apps.push(app);
      return () => request(app.getHttpServer());
    } finally {
      // Read while the app was built; later builds in this file must not inherit it.
      delete process.env.COUNTERS_BUFFER_LIMIT_FIELDS;
    }
  }

  async function worker(dbName: string): Promise<void> {
    apps.push(await startWorker(dbName, { REDIS_URL: redis.url, COUNTERS_FLUSH_INTERVAL_MS: '200' }));
  }

  it('answers 503 with Retry-After for a new key once the buffer holds COUNTERS_BUFFER_LIMIT_FIELDS, keeps counting buffered keys, and takes new keys again after a flush', async () => {
    const dbName = uniqueName('counters_full');
    const http = await api(dbName, { COUNTERS_BUFFER_LIMIT_FIELDS: '2' });
    await http().post('/api/v1/increment').send({ key: 'a', value: 1 }).expect(202);
    await http().post('/api/v1/increment').send({ key: 'b', value: 1 }).expect(202);

    const refused = await http().post('/api/v1/increment').send({ key: 'c', value: 1 }).expect(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body).toEqual({
      statusCode: 503,
      message: expect.stringMatching(/buffer is full.*not recorded, retry later/),
    });
    await http()
      .post('/api/v1/increment')
      .send({
        increments: [
          { key: 'b', value: 1 },
          { key: 'd', value: 1 },
        ],
      })
      .expect(503);

    await http().post('/api/v1/increment').send({ key: 'a', value: 10 }).expect(202);
    await http().get('/api/v1/increment/a').expect(200, { key: 'a', value: 11 });
    // The refused batch recorded nothing, not even its increment of b (a batch is all or nothing).
    await http().get('/api/v1/increment/b').expect(200, { key: 'b', value: 1 });
    await http().get('/api/v1/increment/c').expect(200, { key: 'c', value: 0 });

    await worker(dbName);
    expect(
      await eventually(
        async () => (await http().post('/api/v1/increment').send({ key: 'c', value: 1 })).status === 202,
        10_000,
      ),
    ).toBe(true);
    await http().get('/api/v1/increment/c').expect(200, { key: 'c', value: 1 });
    const counters = mongo.db(dbName).collection('counters');
    expect(await eventually(async () => (await counters.countDocuments()) === 3, 10_000)).toBe(true);
    await mongo.db(dbName).dropDatabase();
  });

  it('refuses to boot with a COUNTERS_BUFFER_LIMIT_FIELDS that is not a positive integer', async () => {
    await expect(api(uniqueName('counters_bad_limit'), { COUNTERS_BUFFER_LIMIT_FIELDS: '0' })).rejects.toThrow(
      /COUNTERS_BUFFER_LIMIT_FIELDS/,
    );
    await expect(api(uniqueName('counters_bad_limit'), { COUNTERS_BUFFER_LIMIT_FIELDS: 'many' })).rejects.toThrow(
      /COUNTERS_BUFFER_LIMIT_FIELDS/,
    );
  });

  it('shows an increment MongoDB refuses (value holds a string) as bufferq_dead_letters{collection="counters"} on /metrics', async () => {
    const dbName = uniqueName('counters_dead');
    const http = await api(dbName);
    const counters = mongo.db(dbName).collection('counters');
    await counters.insertOne({ _id: 'broken' as never, value: 'not a number' });
    const scrape = async () =>
      metricValue((await http().get('/metrics').expect(200)).text, 'bufferq_dead_letters', 'collection="counters"');
    expect(await scrape()).toBe(0);

    await http()
      .post('/api/v1/increment')
      .send({
        increments: [
          { key: 'broken', value: 5 },
          { key: 'fine', value: 7 },
        ],
      })
      .expect(202);
    await worker(dbName);
    expect(await eventually(async () => (await scrape()) === 1, 10_000)).toBe(true);
    // The poison update is set aside; the rest of the batch reached MongoDB.
    expect(await counters.findOne({ _id: 'fine' as never })).toMatchObject({ value: 7 });
    expect(await counters.findOne({ _id: 'broken' as never })).toMatchObject({ value: 'not a number' });
    await mongo.db(dbName).dropDatabase();
  });
});
