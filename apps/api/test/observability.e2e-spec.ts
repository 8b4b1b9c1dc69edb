import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MongoClient } from 'mongodb';
import request from 'supertest';
import {
  eventually,
  freePort,
  LocalServer,
  startPrivateMongo,
  testServices,
  uniqueName,
  WebhookReceiver,
} from '@bufferq/testing';
import { startApi, startWorker } from './api-harness';

const { mongoUrl } = testServices();
const FLUSH_QUEUE = '{buffered-increments-flush}';
const DASHBOARD = join(__dirname, '..', '..', '..', 'deploy', 'observability', 'grafana', 'dashboards', 'bufferq.json');

/** The value of one series in a Prometheus text exposition: `name` alone or `name{labels}` exactly as exposed. */
function seriesValue(text: string, series: string): number {
  const line = text
    .split('\n')
    .find((row) => row.startsWith(`${series} `) || (!series.includes('{') && row.startsWith(`${series}{`)));
  return line ? Number(line.split(' ').pop()) : NaN;
}

/** The metric names a PromQL expression reads (functions, keywords, labels and durations left out). */
function metricNamesIn(expr: string): string[] {
  const withoutLabelsAndRanges = expr
    .replace(/"[^"]*"/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without)\s*\([^)]*\)/g, '');
  const words = withoutLabelsAndRanges.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  const promql = new Set(['sum', 'max', 'min', 'avg', 'count', 'rate', 'increase', 'irate', 'histogram_quantile']);
  return words.filter((word) => !promql.has(word));
}

describe('observability (e2e): worker /metrics on METRICS_PORT and the dashboard', () => {
  const dbName = uniqueName('observability');
  const webhooks = new WebhookReceiver();
  let api: NestFastifyApplication;
  let worker: INestApplicationContext;
  let metricsPort: number;
  const workerMetrics = async () => {
    const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    return response.text();
  };
  const http = () => request(api.getHttpServer());

  beforeAll(async () => {
    await webhooks.start();
    metricsPort = await freePort();
    const env = {
      COUNTERS_FLUSH_INTERVAL_MS: '200',
      TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
      TIMERS_REDIS_PREFIX: uniqueName('obs'),
    };
    api = await startApi(dbName, env);
    worker = await startWorker(dbName, { ...env, WORKER_ROLES: 'all', METRICS_PORT: String(metricsPort) });
  }, 60_000);

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await webhooks.stop();
    const mongo = await new MongoClient(mongoUrl).connect();
    await mongo.db(dbName).dropDatabase();
    await mongo.close();
  });

  it('counts the flushes a worker runs, per collection, with their fields, documents and dead letters', async () => {
    const mongo = await new MongoClient(mongoUrl).connect();
    // A counter MongoDB cannot $inc: its increment becomes a dead letter.
    await mongo
      .db(dbName)
      .collection<{ _id: string; value: string }>('counters')
      .insertOne({ _id: 'poison', value: 'x' });
    await mongo.close();
    await http()
      .post('/api/v1/increment')
      .send({
        increments: [
          { key: 'a', value: 1 },
          { key: 'b', value: 2 },
          { key: 'poison', value: 3 },
        ],
      })
      .expect(202);
    expect(
      await eventually(
        async () => seriesValue(await workerMetrics(), 'flush_dead_letters_total{collection="counters"}') >= 1,
        15_000,
        100,
      ),
    ).toBe(true);
    const text = await workerMetrics();
    expect(seriesValue(text, 'flush_duration_seconds_count{collection="counters"}')).toBeGreaterThanOrEqual(1);
    expect(seriesValue(text, 'flush_fields_total{collection="counters"}')).toBeGreaterThanOrEqual(3);
    expect(seriesValue(text, 'flush_documents_total{collection="counters"}')).toBeGreaterThanOrEqual(2);
    expect(seriesValue(text, 'flush_recovered_batches_total{collection="counters"}')).toBe(0);
    expect(seriesValue(text, 'flush_failures_total{collection="counters"}')).toBe(0);
    expect(seriesValue(text, 'bufferq_buffered_fields{collection="counters"}')).toBe(0);
    expect(seriesValue(text, 'bufferq_oldest_pending_age_seconds{collection="counters"}')).toBe(0);
    const apiText = (await http().get('/metrics').expect(200)).text;
    expect(seriesValue(apiText, 'bufferq_dead_letters{collection="counters"}')).toBe(1);
  });

  it('counts timers claimed and delivered by outcome and status class, and how late each POST was', async () => {
    const created = await http()
      .post('/timers')
      .send({ hours: 0, minutes: 0, seconds: 1, url: `${webhooks.url}/hook` })
      .expect(201);
    const id = created.body.id as string;
    expect(await eventually(() => webhooks.requests.some((hook) => hook.path.endsWith(id)), 15_000, 50)).toBe(true);
    const delivered = 'timers_deliveries_total{outcome="delivered",status_class="2xx"}';
    expect(await eventually(async () => seriesValue(await workerMetrics(), delivered) >= 1, 10_000, 100)).toBe(true);
    const text = await workerMetrics();
    expect(seriesValue(text, 'timers_claimed_total')).toBeGreaterThanOrEqual(1);
    expect(seriesValue(text, 'timers_delivery_lateness_seconds_count')).toBeGreaterThanOrEqual(1);
    // Armed ahead of its run time, the timer is sent on time: well within a second.
    expect(seriesValue(text, 'timers_delivery_lateness_seconds_bucket{le="1"}')).toBe(
      seriesValue(text, 'timers_delivery_lateness_seconds_count'),
    );
  });

  it('serves queue depths by state, event-loop lag, process metrics and the royalties build metrics', async () => {
    const text = await workerMetrics();
    expect(seriesValue(text, `bullmq_queue_jobs{queue="${FLUSH_QUEUE}",state="waiting"}`)).toBeGreaterThanOrEqual(0);
    expect(seriesValue(text, `bullmq_queue_jobs{queue="${FLUSH_QUEUE}",state="active"}`)).toBeGreaterThanOrEqual(0);
    expect(text).toMatch(/^bullmq_queue_jobs\{queue="[^"]*delivery[^"]*",state="waiting"\} \d+$/m);
    expect(seriesValue(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(seriesValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(seriesValue(text, 'royalties_builds_total{outcome="succeeded"}')).toBe(0);
    expect(text).toMatch(/^royalties_build_lines_per_second_count 0$/m);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/health/live`)).status).toBe(200);
  });

  it('exports every metric the Grafana dashboard queries, from the api or the worker', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      panels: Array<{ targets?: Array<{ expr: string }> }>;
    };
    const queried = new Set(
      dashboard.panels.flatMap((panel) => (panel.targets ?? []).flatMap((target) => metricNamesIn(target.expr))),
    );
    expect(queried.size).toBeGreaterThan(20);
    const exported = new Set(
      [(await http().get('/metrics').expect(200)).text, await workerMetrics()]
        .flatMap((text) => text.split('\n'))
        .filter((line) => line && !line.startsWith('#'))
        .map((line) => line.split(/[{ ]/)[0]),
    );
    expect([...queried].filter((name) => !exported.has(name))).toEqual([]);
  });
});

describe('observability (e2e): a flush that fails while MongoDB is down', () => {
  const dbName = uniqueName('observability_outage');
  let privateMongo: LocalServer;
  let api: NestFastifyApplication;
  let worker: INestApplicationContext;
  let metricsPort: number;

  beforeAll(async () => {
    privateMongo = await startPrivateMongo();
    metricsPort = await freePort();
    const env = { MONGO_URL: privateMongo.url, COUNTERS_FLUSH_INTERVAL_MS: '200' };
    api = await startApi(dbName, env);
    worker = await startWorker(dbName, { ...env, METRICS_PORT: String(metricsPort) });
  }, 120_000);

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await privateMongo?.remove();
  });

  it('counts the failed flush in flush_failures_total and keeps the increment buffered until MongoDB is back', async () => {
    const series = async (name: string) =>
      seriesValue(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), name);
    await privateMongo.stop();
    await request(api.getHttpServer()).post('/api/v1/increment').send({ key: 'during-outage', value: 1 }).expect(202);
    expect(
      await eventually(async () => (await series('flush_failures_total{collection="counters"}')) >= 1, 60_000, 250),
    ).toBe(true);
    expect(await series('bufferq_buffered_fields{collection="counters"}')).toBe(1);
    await privateMongo.start();
    expect(
      await eventually(async () => (await series('bufferq_buffered_fields{collection="counters"}')) === 0, 60_000, 250),
    ).toBe(true);
  }, 150_000);
});
