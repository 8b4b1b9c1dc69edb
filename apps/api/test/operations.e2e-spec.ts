import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import { eventually, sleep, testServices, uniqueName } from '@bufferq/testing';
import { startApi, startWorker } from './api-harness';

const { redisUrl, mongoUrl } = testServices();
const FLUSH_QUEUE = 'buffered-increments-flush';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

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

  it('GET /health answers without touching a datastore', async () => {
    await http().get('/health').expect(200, { status: 'ok' });
  });

  it('GET /health/ready reports Redis, MongoDB and the flush lag up', async () => {
    const response = await http().get('/health/ready').expect(200);
    expect(response.body.status).toBe('ok');
    expect(Object.keys(response.body.info).sort()).toEqual(['flush', 'mongodb', 'redis']);
  });

  it('GET /health/ready turns 503 when increments wait longer than the bound, and 200 once a worker flushes', async () => {
    await http().post('/api/v1/increment').send({ key: 'lagging', value: 1 }).expect(202);
    await sleep(500);
    const response = await http().get('/health/ready').expect(503);
    expect(response.body.error.flush.status).toBe('down');
    expect(response.body.error.flush.oldestPendingAgeMs).toBeGreaterThan(400);
    worker = await startWorker(dbName, { COUNTERS_FLUSH_INTERVAL_MS: '200' });
    expect(await eventually(async () => (await http().get('/health/ready')).status === 200, 10_000)).toBe(true);
  });

  it('GET /metrics serves increments, buffer, flush and HTTP latency metrics in Prometheus format', async () => {
    await http().post('/api/v1/increment').send({ increments: [{ key: 'm1', value: 1 }, { key: 'm2', value: 2 }] }).expect(202);
    // A flush job for a collection no worker knows fails: that is a flush failure the api counts.
    const queue = new Queue(FLUSH_QUEUE, { connection: { url: redisUrl } });
    await queue.add('flush', { collection: 'no-such-collection' }, { removeOnComplete: true, removeOnFail: true });
    await queue.close();
    const metricValue = async (name: string) => {
      const text = (await http().get('/metrics').expect(200)).text;
      const line = text.split('\n').find((row) => row.startsWith(`${name} `) || row.startsWith(`${name}{`));
      return line ? Number(line.split(' ').pop()) : NaN;
    };
    expect(await eventually(async () => (await metricValue('flush_failures_total')) >= 1, 10_000)).toBe(true);
    expect(await eventually(async () => (await metricValue('flush_fields_total')) >= 2, 10_000)).toBe(true);
    const response = await http().get('/metrics').expect(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(await metricValue('counters_increments_accepted_total')).toBeGreaterThanOrEqual(3);
    expect(await metricValue('flush_documents_total')).toBeGreaterThanOrEqual(2);
    expect(await metricValue('flush_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(await metricValue('counters_buffered_fields')).toBeGreaterThanOrEqual(0);
    expect(await metricValue('counters_oldest_pending_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(response.text).toMatch(/http_request_duration_seconds_count\{method="POST",route="\/api\/v1\/increment",status_code="202"\} \d+/);
  });

  it('serves the OpenAPI UI at /docs and a document describing the counters endpoints', async () => {
    const page = await http().get('/docs').redirects(1).expect(200);
    expect(page.text).toContain('swagger-ui');
    const document = (await http().get('/docs-json').expect(200)).body;
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/api/v1/increment', '/api/v1/increment/{key}', '/health/ready']));
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
    await http().get('/health/ready').expect((response) => expect([200, 503]).toContain(response.status));
    await http().get('/metrics').expect(200);
  });

  it('limits each client per window across api replicas with 429 and rate limit headers', async () => {
    const env = { RATE_LIMIT_MAX: '5', RATE_LIMIT_WINDOW_MS: '60000' };
    const [first, second] = [await api(env), await api(env)];
    const client = uniqueName('client');
    for (let i = 0; i < 3; i++) {
      const response = await first().post('/api/v1/increment').set('x-api-key', limitedKey).send({ key: client, value: 1 }).expect(202);
      expect(response.headers['x-ratelimit-limit']).toBe('5');
      expect(response.headers['x-ratelimit-remaining']).toBe(String(4 - i));
    }
    // The other replica shares the count through Redis.
    await second().post('/api/v1/increment').set('x-api-key', limitedKey).send({ key: client, value: 1 }).expect(202);
    await second().post('/api/v1/increment').set('x-api-key', limitedKey).send({ key: client, value: 1 }).expect(202);
    const limited = await second().post('/api/v1/increment').set('x-api-key', limitedKey).send({ key: client, value: 1 }).expect(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.body.statusCode).toBe(429);
    // Another client (key) has its own budget; health and metrics are never limited.
    await first().post('/api/v1/increment').set('x-api-key', otherKey).send({ key: client, value: 1 }).expect(202);
    for (let i = 0; i < 8; i++) await first().get('/health').expect(200);
    // The limited request recorded nothing: 3 + 2 + 1 accepted.
    await first().get(`/api/v1/increment/${client}`).set('x-api-key', otherKey).expect(200, { key: client, value: 6 });
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
    const queues = (await http().get('/admin/queues/api/queues').set('authorization', basic('ops', 'board-secret')).expect(200)).body;
    expect(queues.queues.map((queue: { name: string }) => queue.name)).toContain(FLUSH_QUEUE);
    expect(queues.queues.every((queue: { readOnlyMode: boolean }) => queue.readOnlyMode === false)).toBe(true);
  });

  it('shows queues read-only when BOARD_READ_ONLY is set', async () => {
    const app = await startApi(dbName, { BOARD_PASSWORD: 'board-secret', BOARD_READ_ONLY: 'true' });
    apps.push(app);
    const queues = (await request(app.getHttpServer()).get('/admin/queues/api/queues').set('authorization', basic('admin', 'board-secret')).expect(200)).body;
    expect(queues.queues.length).toBeGreaterThan(0);
    expect(queues.queues.every((queue: { readOnlyMode: boolean }) => queue.readOnlyMode === true)).toBe(true);
  });

  it('refuses to start with the default board password in production', async () => {
    await expect(startApi(dbName, { NODE_ENV: 'production' })).rejects.toThrow(/default password in production/);
    const app = await startApi(dbName, { NODE_ENV: 'production', BOARD_ENABLED: 'false' });
    apps.push(app);
    await request(app.getHttpServer()).get('/admin/queues').expect(404);
  });
});
