import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MongoClient } from 'mongodb';
import { writeSyntheticInputs } from '@bufferq/royalties';
import { eventually, testServices, uniqueName } from '@bufferq/testing';

const fixtures = join(__dirname, '..', '..', '..', 'libs', 'royalties', 'test', 'fixtures');
const fixture = { usersCsv: join(fixtures, 'users.csv'), streamsCsv: join(fixtures, 'streams.csv'), tracks: join(fixtures, 'tracks.json') };

describe('royalties endpoints (api + worker role `royalties`, real Redis and MongoDB)', () => {
  let api: NestFastifyApplication;
  let worker: INestApplicationContext;
  let dir: string;
  const mongoDb = uniqueName('royalties_e2e');

  beforeAll(async () => {
    const { redisUrl, mongoUrl } = testServices();
    // Set before the app modules load: ConfigModule validates the environment when AppModule is imported.
    Object.assign(process.env, {
      REDIS_URL: redisUrl,
      MONGO_URL: mongoUrl,
      MONGO_DB: mongoDb,
      ROYALTIES_QUEUE: uniqueName('royalties'),
      WORKER_ROLES: 'royalties',
      LOG_LEVEL: 'silent',
    });
    delete process.env.ROYALTIES_USERS_CSV;
    const { createApiApp } = await import('../src/api-app');
    const { createWorkerApp } = await import('../../worker/src/worker-app');
    api = await createApiApp();
    worker = await createWorkerApp();
    dir = await mkdtemp(join(tmpdir(), 'royalties-e2e-'));
  });

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    const client = await new MongoClient(testServices().mongoUrl).connect();
    await client.db(mongoDb).dropDatabase();
    await client.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (url: string) => {
    const response = await api.inject({ method: 'GET', url });
    return { status: response.statusCode, body: response.json() };
  };
  const post = async (url: string, payload?: object) => {
    const response = await api.inject({ method: 'POST', url, payload });
    return { status: response.statusCode, body: response.json() };
  };
  const finished = async (buildId: string) => {
    let status = '';
    await eventually(async () => {
      status = (await get(`/royalties/builds/${buildId}`)).body.status;
      return ['succeeded', 'failed', 'cancelled'].includes(status);
    }, 30_000);
    return (await get(`/royalties/builds/${buildId}`)).body;
  };

  it('answers 404 on the reports before any build succeeded', async () => {
    expect(await get('/report')).toEqual({ status: 404, body: expect.objectContaining({ message: 'no royalties build has succeeded yet' }) });
    expect((await get('/users/u1')).status).toBe(404);
  });

  it('rejects bad requests with 400 and unknown builds with 404', async () => {
    expect((await post('/royalties/builds', { usersCsv: 'a', surprise: 1 })).status).toBe(400);
    const missing = await post('/royalties/builds', { usersCsv: fixture.usersCsv });
    expect(missing).toEqual({ status: 400, body: expect.objectContaining({ message: expect.stringMatching(/^missing streamsCsv, tracks/) }) });
    expect((await get('/royalties/builds/0123456789abcdef01234567')).status).toBe(404);
    expect((await post('/royalties/builds/0123456789abcdef01234567/cancel')).status).toBe(404);
    expect((await get('/report?buildId=nope')).status).toBe(400);
    expect((await get('/users?limit=0')).status).toBe(400);
  });

  it('builds the hand-made fixture in the worker and serves report, users, revenue and consolidated entries', async () => {
    const started = await post('/royalties/builds', fixture);
    expect(started).toEqual({ status: 202, body: { buildId: expect.stringMatching(/^[a-f0-9]{24}$/) } });
    const build = await finished(started.body.buildId);
    expect(build).toMatchObject({ status: 'succeeded', totalRevenue: 23.58, problemCount: 0, progress: { phase: 'persisting', percent: 100 } });
    expect(build.counts.streams).toMatchObject({ unknownTrackStreams: 1, unknownUsers: 1 });

    expect(await get('/report')).toEqual({ status: 200, body: { 'label A': 10.11, 'label B': 3.37, 'label C': 10.1 } });
    expect(await get('/users/u1')).toEqual({ status: 200, body: { User: 'u1', 'Total Streamed': 200 } });
    expect(await get('/users/ghost')).toEqual({ status: 200, body: { User: 'ghost', 'Total Streamed': 50 } });
    expect((await get('/users/nobody')).status).toBe(404);

    const firstUsers = await get('/users?limit=2');
    // Storage order: users by hash bucket, in file order within a bucket (one bucket at this size).
    expect(firstUsers.body).toEqual({
      buildId: started.body.buildId,
      items: [{ User: 'u1', 'Total Streamed': 200, listed: true }, { User: 'u2', 'Total Streamed': 120, listed: true }],
      next: 'u2',
    });
    expect((await get('/users?limit=2&after=u2')).body).toMatchObject({ items: [{ User: 'u3' }, { User: 'ghost', 'Total Streamed': 50, listed: false }], next: null });

    expect((await get('/revenue')).body).toEqual({
      buildId: started.body.buildId,
      total: 23.58,
      totalExact: '23.5840',
      paidToLabels: 23.58,
      unallocated: 0,
      byOrigin: { app_store: { users: 1, fees: 7.99, revenueExact: '5.5930' }, web: { users: 2, fees: 19.99, revenueExact: '17.9910' } },
    });

    const entries: Array<{ seconds: number }> = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const page: { body: { items: Array<{ seconds: number }>; next: string | null } } = await get(`/consolidated?limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      entries.push(...page.body.items);
      cursor = page.body.next;
    }
    expect(entries).toHaveLength(6);
    expect(entries.reduce((sum, entry) => sum + entry.seconds, 0)).toBe(420);
    expect(entries[2]).toEqual({
      date: '2019-03-02', user_id: 'u3', product_type: 'premium', fee: 9.99, origin: 'web',
      region: 'DE', track_id: 't3', track_name: 'Third Song', track_label: 'label C', seconds: 50,
    });
    expect((await get('/consolidated?cursor=garbage')).status).toBe(400);

    // The build job, with its progress, is on the queue Bull Board shows.
    const board = await api.inject({ method: 'GET', url: '/admin/queues/api/queues?activeQueue=' + process.env.ROYALTIES_QUEUE + '&status=completed', headers: { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` } });
    expect(board.statusCode).toBe(200);
    const queue = board.json().queues.find((entry: { name: string }) => entry.name === process.env.ROYALTIES_QUEUE);
    expect(queue.jobs).toEqual(expect.arrayContaining([expect.objectContaining({ id: started.body.buildId, progress: expect.objectContaining({ phase: 'persisting', percent: 100 }) })]));
  });

  it('shows a failed build with the reason, and keeps serving the last successful report', async () => {
    const started = await post('/royalties/builds', { ...fixture, streamsCsv: join(fixtures, 'users.csv') });
    const build = await finished(started.body.buildId);
    expect(build).toMatchObject({ status: 'failed', error: expect.stringMatching(/streams CSV: the first line must be the header/) });
    expect((await get('/report')).body).toEqual({ 'label A': 10.11, 'label B': 3.37, 'label C': 10.1 });
  });

  it('keeps answering during a large build, shows its progress, and cancels it (a queued one at once)', async () => {
    const files = await writeSyntheticInputs(join(dir, 'large'), { users: 50_000, streams: 2_000_000 });
    const large = (await post('/royalties/builds', files)).body.buildId;
    const queued = (await post('/royalties/builds', fixture)).body.buildId;
    const samples: number[] = [];
    await eventually(async () => {
      const { status, body } = await get(`/royalties/builds/${large}`);
      expect(status).toBe(200);
      if (body.progress?.phase === 'streams') samples.push(body.progress.rowsRead);
      return samples.length >= 2 && samples[samples.length - 1] > samples[0];
    }, 30_000);
    expect(samples[samples.length - 1]).toBeGreaterThan(samples[0]);
    expect((await get('/report')).status).toBe(200);

    expect(await post(`/royalties/builds/${queued}/cancel`)).toEqual({ status: 202, body: { buildId: queued, status: 'cancelled' } });
    expect(await post(`/royalties/builds/${large}/cancel`)).toEqual({ status: 202, body: { buildId: large, status: 'running' } });
    expect(await finished(large)).toMatchObject({ status: 'cancelled', cancelRequested: true });
    expect((await post(`/royalties/builds/${large}/cancel`)).status).toBe(409);
    expect((await get('/report')).body).toEqual({ 'label A': 10.11, 'label B': 3.37, 'label C': 10.1 });
  });
});
