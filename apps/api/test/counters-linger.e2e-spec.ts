import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import { eventually, LocalServer, sleep, startPrivateRedis, testServices, uniqueName } from '@bufferq/testing';
import { startApi } from './api-harness';

const { mongoUrl } = testServices();

describe('COUNTERS_LINGER_MS: increments gathered into one Redis call (e2e)', () => {
  let redis: LocalServer;
  let mongo: MongoClient;
  const apps: NestFastifyApplication[] = [];
  const monitors: Redis[] = [];

  beforeAll(async () => {
    // A private Redis: its MONITOR sees this file's commands only.
    redis = await startPrivateRedis();
    mongo = await new MongoClient(mongoUrl).connect();
  });

  afterEach(async () => {
    monitors.splice(0).forEach((monitor) => monitor.disconnect());
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  afterAll(async () => {
    await mongo.close();
    await redis.remove();
  });

  async function api(dbName: string, lingerMs: string) {
    const app = await startApi(dbName, { REDIS_URL: redis.url, RATE_LIMIT_MAX: '0', COUNTERS_LINGER_MS: lingerMs });
    apps.push(app);
    return () => request(app.getHttpServer());
  }

  /** Counts the script calls that reach Redis for this database's counters buffer from now on. */
  async function bufferCalls(dbName: string): Promise<() => number> {
    // monitor() opens a connection of its own: both are closed after the test.
    const client = new Redis(redis.url);
    const monitor = await client.monitor();
    monitors.push(client, monitor);
    let calls = 0;
    monitor.on('monitor', (_time: string, args: string[]) => {
      const command = args[0].toLowerCase();
      if ((command === 'evalsha' || command === 'eval') && args.some((arg) => arg.includes(`${dbName}.counters`)))
        calls++;
    });
    return () => calls;
  }

  /** Five increments, each sent 20 ms after the one before (so each arrives in an event-loop turn of its own). */
  async function sendFive(http: () => request.Agent, dbName: string): Promise<number[]> {
    const answers: Array<Promise<number>> = [];
    for (let i = 0; i < 5; i++) {
      answers.push(
        http()
          .post('/api/v1/increment')
          .send({ key: `${dbName}-${i}`, value: i + 1 })
          .then((response) => response.status),
      );
      await sleep(20);
    }
    return Promise.all(answers);
  }

  it('sends the increments that arrive within the window in one script call, and answers each 202 once it is in Redis', async () => {
    const dbName = uniqueName('counters_linger');
    const http = await api(dbName, '400');
    const calls = await bufferCalls(dbName);
    expect(await sendFive(http, dbName)).toEqual([202, 202, 202, 202, 202]);
    // MONITOR's copy travels on another connection and may be read after the 202s.
    expect(await eventually(() => calls() >= 1, 5_000)).toBe(true);
    await sleep(300);
    expect(calls()).toBe(1);
    for (let i = 0; i < 5; i++)
      await http()
        .get(`/api/v1/increment/${dbName}-${i}`)
        .expect(200, { key: `${dbName}-${i}`, value: i + 1 });
  });

  it('with 0, sends the increments of each event-loop turn on their own', async () => {
    const dbName = uniqueName('counters_no_linger');
    const http = await api(dbName, '0');
    const calls = await bufferCalls(dbName);
    expect(await sendFive(http, dbName)).toEqual([202, 202, 202, 202, 202]);
    // One call per turn: five unless a stalled event loop let two requests in within one turn (loaded CI).
    expect(await eventually(() => calls() >= 2, 5_000)).toBe(true);
    await sleep(300);
    expect(calls()).toBeGreaterThanOrEqual(2);
    expect(calls()).toBeLessThanOrEqual(5);
  });
});
