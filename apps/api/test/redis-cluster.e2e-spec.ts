// The whole system on a Redis Cluster (three masters, a replica each): the api and the worker run every
// feature with REDIS_CLUSTER_NODES, and a master killed mid-run is replaced by its replica without losing
// or doubling an increment the durability statement covers (README, "Guarantees" / docs/scaling.md).
import { INestApplicationContext } from '@nestjs/common';
import { Redis } from 'ioredis';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  eventually,
  PrivateRedisCluster,
  startPrivateRedisCluster,
  testServices,
  uniqueName,
  WebhookReceiver,
} from '@bufferq/testing';
import { clusterEnvironment, startApi, startWorker } from './api-harness';

const { mongoUrl } = testServices();

describe('the system on a Redis Cluster (e2e)', () => {
  let cluster: PrivateRedisCluster;
  let api: NestFastifyApplication;
  let worker: INestApplicationContext;
  let mongo: MongoClient;
  let receiver: WebhookReceiver;
  let inputs: string;
  const dbName = uniqueName('cluster_e2e');
  const http = () => request(api.getHttpServer());

  beforeAll(async () => {
    cluster = await startPrivateRedisCluster({ replicas: 1 });
    receiver = await new WebhookReceiver().start();
    inputs = await mkdtemp(join(tmpdir(), 'cluster-royalties-'));
    const fixtures = join(__dirname, '..', '..', '..', 'libs', 'royalties', 'test', 'fixtures');
    for (const name of ['users.csv', 'streams.csv', 'tracks.json'])
      await copyFile(join(fixtures, name), join(inputs, name));
    const env = {
      TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
      TIMERS_SCHEDULER_POLL_MS: '20',
      ROYALTIES_INPUT_ROOT: inputs,
      ...clusterEnvironment(cluster),
      COUNTERS_FLUSH_INTERVAL_MS: '200',
      WORKER_ROLES: 'all',
    };
    worker = await startWorker(dbName, env);
    api = await startApi(dbName, env);
    mongo = await new MongoClient(mongoUrl).connect();
  });

  afterAll(async () => {
    await api?.close();
    await worker?.close();
    await mongo?.db(dbName).dropDatabase();
    await mongo?.close();
    await cluster?.remove();
    await receiver?.stop();
    await rm(inputs, { recursive: true, force: true });
  });

  it('counts increments over keys in every slot range and flushes exact totals to MongoDB', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => uniqueName(`c${i}`));
    for (let round = 1; round <= 5; round++) {
      await Promise.all(keys.map((key) => http().post('/api/v1/increment').send({ key, value: round }).expect(202)));
    }
    await http().get(`/api/v1/increment/${keys[0]}`).expect(200, { key: keys[0], value: 15 });
    const counters = mongo.db(dbName).collection('counters');
    expect(
      await eventually(
        async () => (await counters.countDocuments({ _id: { $in: keys as never[] }, value: 15 })) === 40,
        15_000,
      ),
    ).toBe(true);
  });

  it('fires a timer through the due index and the delivery queue on the Cluster', async () => {
    const created = await http()
      .post('/timers')
      .send({ seconds: 1, url: `${receiver.url}/hook` })
      .expect(201);
    const { id } = created.body;
    expect(await eventually(() => receiver.requestsFor(`/hook/${id}`).length === 1, 10_000)).toBe(true);
    expect(await eventually(async () => (await http().get(`/timers/${id}`)).body.status === 'delivered', 5_000)).toBe(
      true,
    );
    expect((await http().get(`/timers/${id}`)).body.time_left).toBe(0);
  });

  it('runs a royalties build through its queue on the Cluster', async () => {
    const inputsOf = {
      usersCsv: join(inputs, 'users.csv'),
      streamsCsv: join(inputs, 'streams.csv'),
      tracks: join(inputs, 'tracks.json'),
    };
    const started = await http().post('/royalties/builds').send(inputsOf).expect(202);
    const buildId = started.body.buildId;
    expect(
      await eventually(
        async () => (await http().get(`/royalties/builds/${buildId}`)).body.status === 'succeeded',
        30_000,
      ),
    ).toBe(true);
    await http().get(`/report?buildId=${buildId}`).expect(200);
  });

  it('answers health checks and serves metrics with Redis on the Cluster', async () => {
    await http().get('/health/ready').expect(200);
    const metrics = (await http().get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/bullmq_queue_jobs\{queue="\{buffered-increments-flush\}"/);
  });

  it('counts rate limits in the Cluster (hash-tagged keys per client and throttler)', async () => {
    await http()
      .post('/api/v1/increment')
      .send({ key: uniqueName('rl'), value: 1 })
      .expect(202);
    const masters = cluster.masters().map((master) => new Redis(master.port));
    try {
      const hitKeys = (await Promise.all(masters.map((master) => master.keys('*:hits')))).flat();
      expect(hitKeys.length).toBeGreaterThan(0);
      expect(hitKeys.every((key) => /^\{[^}]+\}:hits$/.test(key))).toBe(true);
    } finally {
      masters.forEach((master) => master.disconnect());
    }
  });

  it('shows every queue in Bull Board with its jobs read from the Cluster', async () => {
    const board = await http()
      .get('/admin/queues/api/queues')
      .set('authorization', `Basic ${Buffer.from('admin:admin').toString('base64')}`)
      .expect(200);
    const names = board.body.queues.map((queue: { name: string }) => queue.name);
    expect(names).toEqual(
      expect.arrayContaining([
        '{buffered-increments-flush}',
        expect.stringMatching(/-delivery\}$/),
        expect.stringMatching(/^\{royalties/),
      ]),
    );
  });
});
