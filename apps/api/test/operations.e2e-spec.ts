import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import {
  eventually,
  LocalServer,
  sleep,
  startPrivateMongo,
  startPrivateRedis,
  testServices,
  uniqueName,
} from '@bufferq/testing';
import { startApi, startWorker } from './api-harness';

const { mongoUrl } = testServices();
const FLUSH_QUEUE = '{buffered-increments-flush}';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const STRONG_SECRET = 'a-long-random-production-secret-0123456789';

/** The value of one series on /metrics: `name` alone, or `name{label="value"}` exactly as exposed. */
async function metricValue(http: () => request.Agent, series: string): Promise<number> {
  const text = (await http().get('/metrics').expect(200)).text;
  const line = text
    .split('\n')
    .find((row) => row.startsWith(`${series} `) || (!series.includes('{') && row.startsWith(`${series}{`)));
  return line ? Number(line.split(' ').pop()) : NaN;
}

/** A client address from the documentation ranges, different in every run. */
const clientAddress = () => `198.18.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;

describe('operations (e2e): health, metrics, docs, request ids', () => {
  const dbName = uniqueName('ops_e2e');
  let api: NestFastifyApplication;
  let worker: INestApplicationContext | undefined;
  const http = () => request(api.getHttpServer());

  beforeAll(async () => {
    api = await startApi(dbName, { READY_MAX_FLUSH_LAG_MS: '400', COUNTERS_FLUSH_INTERVAL_MS: '200' });
  });

  afterAll(async () => {
    await worker?.close();
    await api.close();
    const mongo = await new MongoClient(mongoUrl).connect();
    await mongo.db(dbName).dropDatabase();
    await mongo.close();
  });

  it('GET /health/live (and /health) answers without touching a datastore', async () => {
    await http().get('/health/live').expect(200, { status: 'ok' });
    await http().get('/health').expect(200, { status: 'ok' });
  });

  it('GET /health/ready is decided by Redis and details Redis, MongoDB and every capability check (flush lag, royalties builds, timers schedule)', async () => {
    const response = await http().get('/health/ready').expect(200);
    expect(response.body.status).toBe('ok');
    expect(Object.keys(response.body.info)).toEqual(['redis']);
    expect(Object.keys(response.body.details).sort()).toEqual(['flush', 'mongodb', 'redis', 'royalties', 'timers']);
    expect(response.body.details.mongodb.status).toBe('up');
  });

  it('GET /health/ready stays 200 while increments wait longer than the bound, showing the lag in its details and metrics until a worker flushes', async () => {
    await http().post('/api/v1/increment').send({ key: 'lagging', value: 1 }).expect(202);
    await sleep(500);
    const response = await http().get('/health/ready').expect(200);
    expect(response.body.status).toBe('ok');
    expect(response.body.details.flush.status).toBe('down');
    expect(response.body.details.flush.oldestPendingAgeMs).toBeGreaterThan(400);
    expect(await metricValue(http, 'health_check_up{check="flush"}')).toBe(0);
    expect(await metricValue(http, 'counters_oldest_pending_age_seconds')).toBeGreaterThan(0.4);
    worker = await startWorker(dbName, { COUNTERS_FLUSH_INTERVAL_MS: '200' });
    expect(
      await eventually(async () => (await http().get('/health/ready')).body.details?.flush?.status === 'up', 10_000),
    ).toBe(true);
    expect(await metricValue(http, 'health_check_up{check="flush"}')).toBe(1);
  });

  it('GET /metrics serves increments, buffer, health, queue, process and HTTP latency metrics in Prometheus format', async () => {
    await http()
      .post('/api/v1/increment')
      .send({
        increments: [
          { key: 'm1', value: 1 },
          { key: 'm2', value: 2 },
        ],
      })
      .expect(202);
    const response = await http().get('/metrics').expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(await metricValue(http, 'counters_increments_accepted_total')).toBeGreaterThanOrEqual(3);
    expect(await metricValue(http, 'counters_buffered_fields')).toBeGreaterThanOrEqual(0);
    expect(await metricValue(http, 'counters_oldest_pending_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(await metricValue(http, 'bufferq_dead_letters{collection="counters"}')).toBe(0);
    expect(await metricValue(http, 'health_check_up{check="redis"}')).toBe(1);
    expect(await metricValue(http, 'health_check_up{check="mongodb"}')).toBe(1);
    expect(await metricValue(http, `bullmq_queue_jobs{queue="${FLUSH_QUEUE}",state="failed"}`)).toBeGreaterThanOrEqual(
      0,
    );
    expect(await metricValue(http, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(await metricValue(http, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(response.text).toMatch(
      /http_request_duration_seconds_count\{method="POST",route="\/api\/v1\/increment",status_code="202"\} \d+/,
    );
  });

  it("keeps each app's metrics its own: a second api built in the process counts from zero", async () => {
    const before = await metricValue(http, 'counters_increments_accepted_total');
    const other = await startApi(dbName);
    try {
      await request(other.getHttpServer()).post('/api/v1/increment').send({ key: 'other', value: 1 }).expect(202);
      expect(await metricValue(() => request(other.getHttpServer()), 'counters_increments_accepted_total')).toBe(1);
      expect(await metricValue(http, 'counters_increments_accepted_total')).toBe(before);
    } finally {
      await other.close();
    }
  });

  it('serves the OpenAPI UI at /docs and a document describing the counters endpoints', async () => {
    const page = await http().get('/docs').redirects(1).expect(200);
    expect(page.text).toContain('swagger-ui');
    const document = (await http().get('/docs-json').expect(200)).body;
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(['/api/v1/increment', '/api/v1/increment/{key}', '/health/ready']),
    );
    expect(document.components.schemas.IncrementDto.properties).toHaveProperty('value');
  });

  it('gives every response a request id, keeping a sane one the caller sent', async () => {
    const fresh = await http().get('/health').expect(200);
    expect(fresh.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await http().get('/health').set('x-request-id', 'trace-42').expect(200);
    expect(kept.headers['x-request-id']).toBe('trace-42');
    const replaced = await http().get('/health').set('x-request-id', 'bad id with spaces').expect(200);
    expect(replaced.headers['x-request-id']).not.toBe('bad id with spaces');
  });
});

describe('operations (e2e): liveness and readiness while a datastore is down', () => {
  const dbName = uniqueName('ops_outage');
  let privateRedis: LocalServer;
  let privateMongo: LocalServer;
  let api: NestFastifyApplication;
  const http = () => request(api.getHttpServer());

  beforeAll(async () => {
    [privateRedis, privateMongo] = await Promise.all([startPrivateRedis({ appendOnly: true }), startPrivateMongo()]);
    api = await startApi(dbName, { REDIS_URL: privateRedis.url, MONGO_URL: privateMongo.url });
  }, 120_000);

  afterAll(async () => {
    await api?.close();
    await Promise.all([privateRedis?.remove(), privateMongo?.remove()]);
  });

  it('keeps /health/ready 200 and increments accepted while MongoDB is down, showing MongoDB down in the details and metrics', async () => {
    await privateMongo.stop();
    const ready = await http().get('/health/ready').expect(200);
    expect(ready.body.status).toBe('ok');
    expect(ready.body.details.redis.status).toBe('up');
    expect(ready.body.details.mongodb.status).toBe('down');
    await http().post('/api/v1/increment').send({ key: 'during-mongo-outage', value: 1 }).expect(202);
    expect(await metricValue(http, 'health_check_up{check="mongodb"}')).toBe(0);
    expect(await metricValue(http, 'health_check_up{check="redis"}')).toBe(1);
    await privateMongo.start();
    expect(
      await eventually(
        async () => (await http().get('/health/ready')).body.details?.mongodb?.status === 'up',
        30_000,
        250,
      ),
    ).toBe(true);
  }, 90_000);

  it('turns /health/ready 503 while Redis is unreachable, and /health/live stays 200', async () => {
    await privateRedis.stop();
    await http().get('/health/live').expect(200, { status: 'ok' });
    const ready = await http().get('/health/ready').expect(503);
    expect(ready.body.status).toBe('error');
    expect(ready.body.error.redis.status).toBe('down');
    expect(ready.body.details.mongodb.status).toBe('up');
    await privateRedis.start();
    expect(await eventually(async () => (await http().get('/health/ready')).status === 200, 15_000, 100)).toBe(true);
  }, 60_000);
});

describe('operations (e2e): API keys and rate limits', () => {
  const dbName = uniqueName('ops_keys');
  const apiKey = uniqueName('key');
  const otherKey = uniqueName('key');
  const limitedKey = uniqueName('key');
  const apps: NestFastifyApplication[] = [];

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
  });

  async function api(env: Record<string, string>) {
    const app = await startApi(dbName, { API_KEYS: `${apiKey}, ${otherKey},${limitedKey}`, ...env });
    apps.push(app);
    return () => request(app.getHttpServer());
  }

  it('requires a configured x-api-key on every endpoint except health and metrics (401)', async () => {
    const http = await api({});
    await http().post('/api/v1/increment').send({ key: 'k', value: 1 }).expect(401);
    await http().post('/api/v1/increment').set('x-api-key', 'wrong').send({ key: 'k', value: 1 }).expect(401);
    await http().get('/api/v1/increment/k').expect(401);
    await http().get('/timers').expect(401);
    await http().post('/api/v1/increment').set('x-api-key', apiKey).send({ key: 'k', value: 1 }).expect(202);
    await http().get('/api/v1/increment/k').set('x-api-key', otherKey).expect(200, { key: 'k', value: 1 });
    await http().get('/health').expect(200);
    await http()
      .get('/health/ready')
      .expect((response) => expect([200, 503]).toContain(response.status));
    await http().get('/metrics').expect(200);
  });

  it('limits each client per window across api replicas with 429 and rate limit headers', async () => {
    const env = { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' };
    const [first, second] = [await api(env), await api(env)];
    const client = uniqueName('client');
    for (let i = 0; i < 3; i++) {
      const response = await first()
        .post('/api/v1/increment')
        .set('x-api-key', limitedKey)
        .send({ key: client, value: 1 })
        .expect(202);
      expect(response.headers['x-ratelimit-limit']).toBe('5');
      expect(response.headers['x-ratelimit-remaining']).toBe(String(4 - i));
    }
    // The other replica shares the count through Redis.
    await second().post('/api/v1/increment').set('x-api-key', limitedKey).send({ key: client, value: 1 }).expect(202);
    await second().post('/api/v1/increment').set('x-api-key', limitedKey).send({ key: client, value: 1 }).expect(202);
    const limited = await second()
      .post('/api/v1/increment')
      .set('x-api-key', limitedKey)
      .send({ key: client, value: 1 })
      .expect(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.body.statusCode).toBe(429);
    // Another client (key) has its own budget; health and metrics are never limited.
    await first().post('/api/v1/increment').set('x-api-key', otherKey).send({ key: client, value: 1 }).expect(202);
    for (let i = 0; i < 8; i++) await first().get('/health').expect(200);
    // The limited request recorded nothing: 3 + 2 + 1 accepted.
    await first().get(`/api/v1/increment/${client}`).set('x-api-key', otherKey).expect(200, { key: client, value: 6 });
  });
});

describe('operations (e2e): client addresses behind proxies (TRUST_PROXY)', () => {
  const dbName = uniqueName('ops_proxy');
  let privateRedis: LocalServer;
  const apps: NestFastifyApplication[] = [];

  // A Redis of their own: every request here comes from loopback, whose count no other test may touch.
  beforeAll(async () => {
    privateRedis = await startPrivateRedis();
  });

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await privateRedis?.remove();
  });

  async function api(env: Record<string, string>) {
    const app = await startApi(dbName, {
      REDIS_URL: privateRedis.url,
      RATE_LIMIT_MAX: '3',
      RATE_LIMIT_WINDOW_MS: '60000',
      ...env,
    });
    apps.push(app);
    return (forwardedFor: string) =>
      request(app.getHttpServer())
        .post('/api/v1/increment')
        .set('x-forwarded-for', forwardedFor)
        .send({ key: 'proxied', value: 1 });
  }

  it('ignores X-Forwarded-For by default, and from an address that is not a listed proxy: a client cannot pick its rate-limit identity', async () => {
    const byDefault = await api({});
    await byDefault('203.0.113.1').expect(202);
    await byDefault('203.0.113.2').expect(202);
    const otherProxy = await api({ TRUST_PROXY: '10.1.2.3' });
    await otherProxy('203.0.113.3').expect(202);
    await byDefault('203.0.113.4').expect(429);
    await otherProxy('203.0.113.5').expect(429);
  });

  it('takes the client address a listed proxy appended to X-Forwarded-For, and only that one', async () => {
    const increment = await api({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1, ::1' });
    const [client, neighbour] = [clientAddress(), clientAddress().replace(/^198\.18/, '198.19')];
    for (let i = 0; i < 3; i++) await increment(client).expect(202);
    await increment(client).expect(429);
    await increment(neighbour).expect(202);
    // What the client itself wrote comes before what the trusted proxy appended: it changes nothing.
    await increment(`192.0.2.77, ${client}`).expect(429);
  });
});

describe('operations (e2e): production refuses unsafe defaults', () => {
  const dbName = uniqueName('ops_prod');
  const apps: INestApplicationContext[] = [];

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
  });

  it('refuses to boot the api in production with the published signing secret, or a board password that is short or a known default', async () => {
    await expect(startApi(dbName, { NODE_ENV: 'production', BOARD_PASSWORD: STRONG_SECRET })).rejects.toThrow(
      /TIMERS_SIGNING_SECRET/,
    );
    const withSecret = { NODE_ENV: 'production', TIMERS_SIGNING_SECRET: STRONG_SECRET };
    await expect(startApi(dbName, withSecret)).rejects.toThrow(/BOARD_PASSWORD/);
    await expect(startApi(dbName, { ...withSecret, BOARD_PASSWORD: 'short-but-new' })).rejects.toThrow(
      /BOARD_PASSWORD.*16/,
    );
    await expect(startApi(dbName, { ...withSecret, BOARD_PASSWORD: 'change-me-please' })).rejects.toThrow(
      /BOARD_PASSWORD/,
    );
    apps.push(await startApi(dbName, { ...withSecret, BOARD_PASSWORD: STRONG_SECRET }));
  });

  it('refuses to boot the worker in production with the published signing secret', async () => {
    await expect(startWorker(dbName, { NODE_ENV: 'production' })).rejects.toThrow(/TIMERS_SIGNING_SECRET/);
    apps.push(await startWorker(dbName, { NODE_ENV: 'production', TIMERS_SIGNING_SECRET: STRONG_SECRET }));
  });
});

describe('operations (e2e): Bull Board', () => {
  const dbName = uniqueName('ops_board');
  const apps: NestFastifyApplication[] = [];

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
  });

  it('serves the board at /admin/queues behind basic auth, listing the flush queue', async () => {
    const app = await startApi(dbName, { BOARD_USER: 'ops', BOARD_PASSWORD: 'board-secret' });
    apps.push(app);
    const http = () => request(app.getHttpServer());
    const denied = await http().get('/admin/queues').expect(401);
    expect(denied.headers['www-authenticate']).toMatch(/^Basic/);
    await http().get('/admin/queues').set('authorization', basic('ops', 'wrong')).expect(401);
    await http().get('/admin/queues/api/queues').expect(401);
    const page = await http().get('/admin/queues').set('authorization', basic('ops', 'board-secret')).expect(200);
    expect(page.text).toContain('<html');
    const queues = (
      await http().get('/admin/queues/api/queues').set('authorization', basic('ops', 'board-secret')).expect(200)
    ).body;
    expect(queues.queues.map((queue: { name: string }) => queue.name)).toContain(FLUSH_QUEUE);
    expect(queues.queues.every((queue: { readOnlyMode: boolean }) => queue.readOnlyMode === false)).toBe(true);
  });

  it('answers a request Bull Board cannot parse with 400 and no stack trace (found by npm run fuzz)', async () => {
    const app = await startApi(dbName, { BOARD_USER: 'ops', BOARD_PASSWORD: 'board-secret' });
    apps.push(app);
    const response = await request(app.getHttpServer())
      .put('/admin/queues/api/queues/no-such-queue/obliterate')
      .set('authorization', basic('ops', 'board-secret'))
      .set('content-type', 'application/json')
      .send(JSON.stringify('a\u0000b'));
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).not.toMatch(/at .*\.js|node_modules|stack/i);
  });

  it('shows queues read-only when BOARD_READ_ONLY is set', async () => {
    const app = await startApi(dbName, { BOARD_PASSWORD: 'board-secret', BOARD_READ_ONLY: 'true' });
    apps.push(app);
    const queues = (
      await request(app.getHttpServer())
        .get('/admin/queues/api/queues')
        .set('authorization', basic('admin', 'board-secret'))
        .expect(200)
    ).body;
    expect(queues.queues.length).toBeGreaterThan(0);
    expect(queues.queues.every((queue: { readOnlyMode: boolean }) => queue.readOnlyMode === true)).toBe(true);
  });

  it('refuses to start with the default board password in production, unless the board is off', async () => {
    await expect(startApi(dbName, { NODE_ENV: 'production', TIMERS_SIGNING_SECRET: STRONG_SECRET })).rejects.toThrow(
      /BOARD_PASSWORD/,
    );
    const app = await startApi(dbName, {
      NODE_ENV: 'production',
      TIMERS_SIGNING_SECRET: STRONG_SECRET,
      BOARD_ENABLED: 'false',
    });
    apps.push(app);
    await request(app.getHttpServer()).get('/admin/queues').expect(404);
  });

  it('answers 429 to a client after 10 failed logins in a window, even with the right password, while other clients still log in', async () => {
    const app = await startApi(dbName, {
      BOARD_USER: 'ops',
      BOARD_PASSWORD: 'board-secret',
      TRUST_PROXY: '127.0.0.1, ::1',
    });
    apps.push(app);
    const board = (client: string) =>
      request(app.getHttpServer()).get('/admin/queues/api/queues').set('x-forwarded-for', client);
    const [guesser, operator] = [clientAddress(), clientAddress().replace(/^198\.18/, '198.19')];
    // Asking without credentials is the browser's first request, not a failed login.
    for (let i = 0; i < 3; i++) await board(guesser).expect(401);
    for (let i = 0; i < 10; i++)
      await board(guesser)
        .set('authorization', basic('ops', `guess-${i}`))
        .expect(401);
    const limited = await board(guesser).set('authorization', basic('ops', 'guess-10')).expect(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    await board(guesser).set('authorization', basic('ops', 'board-secret')).expect(429);
    await board(operator).set('authorization', basic('ops', 'board-secret')).expect(200);
  });
});
