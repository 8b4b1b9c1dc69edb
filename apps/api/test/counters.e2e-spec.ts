import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import { eventually, testServices, uniqueName } from '@bufferq/testing';

const { redisUrl, mongoUrl } = testServices();
const dbName = uniqueName('counters_e2e');

describe('counters HTTP api (e2e, real Redis and MongoDB)', () => {
  let api: NestFastifyApplication;
  let worker: INestApplicationContext | undefined;
  let mongo: MongoClient;
  const http = () => request(api.getHttpServer());

  beforeAll(async () => {
    Object.assign(process.env, {
      REDIS_URL: redisUrl,
      MONGO_URL: mongoUrl,
      MONGO_DB: dbName,
      LOG_LEVEL: 'silent',
      WORKER_ROLES: 'flush',
      COUNTERS_FLUSH_INTERVAL_MS: '300',
    });
    // The app modules read the environment when they are imported, so import them after setting it.
    const { createApiApp } = await import('../src/api-app');
    api = await createApiApp();
    mongo = await new MongoClient(mongoUrl).connect();
  });

  afterAll(async () => {
    await worker?.close();
    await api.close();
    await mongo.db(dbName).dropDatabase();
    await mongo.close();
  });

  async function startWorker(): Promise<void> {
    const { createWorkerApp } = await import('../../worker/src/worker-app');
    worker = await createWorkerApp();
    await worker.init();
  }

  describe('POST /api/v1/increment and GET /api/v1/increment/:key', () => {
    it('accepts an increment with 202 and echoes it, and a read sees it at once (before any flush)', async () => {
      const key = uniqueName('k');
      await http().post('/api/v1/increment').send({ key, value: 3 }).expect(202, { key, value: 3 });
      await http().post('/api/v1/increment').send({ key, value: -5 }).expect(202, { key, value: -5 });
      await http()
        .get(`/api/v1/increment/${encodeURIComponent(key)}`)
        .expect(200, { key, value: -2 });
      expect(
        await mongo
          .db(dbName)
          .collection('counters')
          .countDocuments({ _id: key as never }),
      ).toBe(0);
    });

    it('answers value 0 for an unknown key', async () => {
      await http().get('/api/v1/increment/never-incremented').expect(200, { key: 'never-incremented', value: 0 });
    });

    it('accepts the batch form and sums repeated keys', async () => {
      const [a, b] = [uniqueName('a'), uniqueName('b')];
      const increments = [
        { key: a, value: 1 },
        { key: b, value: 10 },
        { key: a, value: 2 },
      ];
      await http().post('/api/v1/increment').send({ increments }).expect(202, { accepted: 3 });
      await http().get(`/api/v1/increment/${a}`).expect(200, { key: a, value: 3 });
      await http().get(`/api/v1/increment/${b}`).expect(200, { key: b, value: 10 });
    });

    it('records a batch whole or not at all: one overflowing increment refuses it, and nothing of it is recorded (found by npm run fuzz)', async () => {
      const [full, other] = [uniqueName('full'), uniqueName('other')];
      const big = (count: number) =>
        Array.from({ length: count }, () => ({ key: full, value: Number.MAX_SAFE_INTEGER }));
      await http()
        .post('/api/v1/increment')
        .send({ increments: big(100) })
        .expect(202);
      const before = (await http().get(`/api/v1/increment/${full}`).expect(200)).body;
      // 100 + 999 times 2^53 passes 2^63: the last ones overflow, after `other` and the first ones were buffered.
      const refused = await http()
        .post('/api/v1/increment')
        .send({ increments: [{ key: other, value: 5 }, ...big(999)] })
        .expect(400);
      expect(JSON.stringify(refused.body)).toMatch(/overflow/);
      await http().get(`/api/v1/increment/${other}`).expect(200, { key: other, value: 0 });
      await http().get(`/api/v1/increment/${full}`).expect(200, before);
    });

    it('reads a counter past 2^53 exactly, as the digits of a JSON number (found by npm run fuzz)', async () => {
      const key = uniqueName('big');
      const increments = Array.from({ length: 3 }, () => ({ key, value: Number.MAX_SAFE_INTEGER }));
      await http().post('/api/v1/increment').send({ increments }).expect(202);
      const before = await http().get(`/api/v1/increment/${key}`).expect(200);
      expect(before.text).toBe(`{"key":"${key}","value":${3n * BigInt(Number.MAX_SAFE_INTEGER)}}`);
      expect(before.headers['content-type']).toMatch(/^application\/json/);
      await startWorker();
      expect(
        await eventually(
          async () =>
            (await mongo
              .db(dbName)
              .collection('counters')
              .countDocuments({ _id: key as never })) === 1,
          5_000,
        ),
      ).toBe(true);
      await worker?.close();
      worker = undefined;
      await http()
        .get(`/api/v1/increment/${key}`)
        .expect(200)
        .expect((response) => expect(response.text).toBe(before.text));
    });

    it('keeps keys with slashes, spaces, quotes and non-ASCII characters apart', async () => {
      const key = `${uniqueName('k')}/ä "x" :1`;
      await http().post('/api/v1/increment').send({ key, value: 7 }).expect(202);
      await http()
        .get(`/api/v1/increment/${encodeURIComponent(key)}`)
        .expect(200, { key, value: 7 });
    });

    it('lets the worker write { _id: key, value } to MongoDB, and reads stay exact across flushes', async () => {
      const key = uniqueName('flushed');
      await http().post('/api/v1/increment').send({ key, value: 40 }).expect(202);
      await startWorker();
      const counters = mongo.db(dbName).collection('counters');
      expect(await eventually(async () => (await counters.findOne({ _id: key as never }))?.value === 40, 10_000)).toBe(
        true,
      );
      let expected = 40;
      // Increments and reads while the worker flushes every 300 ms: every read equals the sum so far.
      for (let i = 1; i <= 30; i++) {
        await http().post('/api/v1/increment').send({ key, value: i }).expect(202);
        expected += i;
        await http().get(`/api/v1/increment/${key}`).expect(200, { key, value: expected });
      }
      expect(
        await eventually(async () => (await counters.findOne({ _id: key as never }))?.value === expected, 10_000),
      ).toBe(true);
    });
  });

  describe('rejects every class of bad input with a 400 naming the field', () => {
    const key = 'valid-key';
    it.each([
      ['value of the wrong type', { key, value: '3' }, ['value']],
      ['key of the wrong type', { key: 12, value: 3 }, ['key']],
      ['a missing value', { key }, ['value']],
      ['a missing key', { value: 1 }, ['key']],
      ['a non-integer value', { key, value: 1.5 }, ['value']],
      ['an unsafe integer', { key, value: 2 ** 53 }, ['value']],
      ['an empty key', { key: '', value: 1 }, ['key']],
      ['a huge key (over 512 bytes)', { key: 'é'.repeat(257), value: 1 }, ['key']],
      ['an unknown field', { key, value: 1, extra: true }, []],
      [
        'a bad increment inside a batch',
        {
          increments: [
            { key, value: 1 },
            { key, value: null },
          ],
        },
        ['increments', 1, 'value'],
      ],
      ['an empty batch', { increments: [] }, ['increments']],
      [
        'a batch over 1,000 increments',
        { increments: Array.from({ length: 1001 }, () => ({ key, value: 1 })) },
        ['increments'],
      ],
      ['a JSON array', [{ key, value: 1 }], []],
    ])('%s', async (_name, body, path) => {
      const response = await http()
        .post('/api/v1/increment')
        .send(body as object)
        .expect(400);
      expect(response.body.message).toBe('Validation failed');
      expect(response.body.errors.map((error: { path: unknown[] }) => error.path)).toContainEqual(path);
    });

    it('an unsafe integer written as a JSON literal', async () => {
      const response = await http()
        .post('/api/v1/increment')
        .set('content-type', 'application/json')
        .send('{"key":"k","value":9007199254740993}')
        .expect(400);
      expect(response.body.errors[0].path).toEqual(['value']);
    });

    it('a huge key in the read path', async () => {
      const response = await http()
        .get(`/api/v1/increment/${'k'.repeat(600)}`)
        .expect(400);
      expect(response.body.errors[0].path).toEqual(['key']);
    });

    it('malformed JSON', async () => {
      await http()
        .post('/api/v1/increment')
        .set('content-type', 'application/json')
        .send('{"key": "k", "value": ')
        .expect(400);
    });

    it('a non-JSON text body', async () => {
      await http().post('/api/v1/increment').set('content-type', 'text/plain').send('key=k&value=1').expect(400);
    });

    it('an unsupported content type (415)', async () => {
      await http().post('/api/v1/increment').set('content-type', 'application/xml').send('<key>k</key>').expect(415);
    });

    it('a huge body (413) before parsing it', async () => {
      const body = JSON.stringify({ key: 'k', value: 1, pad: 'x'.repeat(2 * 1024 * 1024) });
      await http().post('/api/v1/increment').set('content-type', 'application/json').send(body).expect(413);
    });
  });
});
