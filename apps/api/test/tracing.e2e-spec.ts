import { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { MongoClient } from 'mongodb';
import { eventually, freePort, testServices, uniqueName, WebhookReceiver } from '@bufferq/testing';
import { spawnApp } from './api-harness';
import { OtlpReceiver, ReceivedSpan } from './otlp-receiver';

const { redisUrl, mongoUrl } = testServices();
const FLUSH_QUEUE = '{buffered-increments-flush}';
const SPAN_KIND = { SERVER: 2, CLIENT: 3, CONSUMER: 5 };

const isRedisCommand = (span: ReceivedSpan) =>
  span.attributes['db.system'] === 'redis' || span.attributes['db.system.name'] === 'redis';
const isMongoCommand = (span: ReceivedSpan) =>
  span.attributes['db.system'] === 'mongodb' || span.attributes['db.system.name'] === 'mongodb';

describe('tracing (e2e: api and worker processes export OTLP/HTTP to a local receiver)', () => {
  const dbName = uniqueName('tracing');
  const collector = new OtlpReceiver();
  const webhooks = new WebhookReceiver();
  const children: ChildProcess[] = [];
  /** The worker's log lines (pino JSON). */
  const workerLogs: Array<Record<string, unknown>> = [];
  let base: string;

  beforeAll(async () => {
    await Promise.all([collector.start(), webhooks.start()]);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env = {
      REDIS_URL: redisUrl,
      MONGO_URL: mongoUrl,
      MONGO_DB: dbName,
      PORT: String(port),
      HOST: '127.0.0.1',
      RATE_LIMIT_MAX: '0',
      BOARD_ENABLED: 'false',
      COUNTERS_FLUSH_INTERVAL_MS: '300',
      WORKER_ROLES: 'flush,timers',
      TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
      TIMERS_REDIS_PREFIX: uniqueName('trace'),
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const worker = spawnApp('worker', env, { stdout: 'pipe' });
    createInterface({ input: worker.stdout! }).on('line', (line) => {
      if (line.startsWith('{')) workerLogs.push(JSON.parse(line));
    });
    children.push(spawnApp('api', env), worker);
    expect(
      await eventually(async () => (await fetch(`${base}/health`).catch(() => null))?.ok === true, 60_000, 100),
    ).toBe(true);
    // The worker traces its flush jobs once it is up: its first ones reach the collector.
    expect(await eventually(() => collector.spans.some((span) => span.service === 'bufferq-worker'), 60_000, 100)).toBe(
      true,
    );
  }, 90_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((child) => new Promise((resolve) => child.once('exit', resolve))));
    await Promise.all([collector.stop(), webhooks.stop()]);
    const mongo = await new MongoClient(mongoUrl).connect();
    await mongo.db(dbName).dropDatabase();
    await mongo.close();
  });

  it('traces an increment from its HTTP request to the Redis buffer write', async () => {
    const response = await fetch(`${base}/api/v1/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'traced', value: 1 }),
    });
    expect(response.status).toBe(202);
    const request = () =>
      collector.spans.find(
        (span) =>
          span.service === 'bufferq-api' &&
          span.kind === SPAN_KIND.SERVER &&
          String(span.attributes['url.path'] ?? span.attributes['http.target']).startsWith('/api/v1/increment'),
      );
    expect(await eventually(() => request() !== undefined, 10_000)).toBe(true);
    const bufferWrite = () =>
      collector.spans.find(
        (span) => isRedisCommand(span) && collector.ancestors(span).some((ancestor) => ancestor === request()),
      );
    expect(await eventually(() => bufferWrite() !== undefined, 10_000)).toBe(true);
  });

  it('traces a flush job from its processing to each MongoDB bulkWrite', async () => {
    const flushJobWithWrite = () =>
      collector.spans.find(
        (span) =>
          span.service === 'bufferq-worker' &&
          isMongoCommand(span) &&
          collector
            .ancestors(span)
            .some((ancestor) => ancestor.kind === SPAN_KIND.CONSUMER && ancestor.name.includes(FLUSH_QUEUE)),
      );
    expect(await eventually(() => flushJobWithWrite() !== undefined, 20_000, 100)).toBe(true);
    expect(String(flushJobWithWrite()!.attributes['db.operation'] ?? flushJobWithWrite()!.name)).toMatch(
      /update|insert/,
    );
  });

  /** Creates a timer due in `seconds`, waits for its POST, and returns the POST's span ancestors' names and kinds. */
  async function tracedTimer(seconds: number): Promise<Array<{ name: string; kind: number }>> {
    const created = await fetch(`${base}/timers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hours: 0, minutes: 0, seconds, url: `${webhooks.url}/hook` }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect(await eventually(() => webhooks.requests.some((hook) => hook.path.endsWith(id)), 20_000, 50)).toBe(true);
    const traceparent = String(webhooks.requests.find((hook) => hook.path.endsWith(id))!.headers.traceparent);
    const [, traceId, postSpanId] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(traceparent) ?? [];
    expect(traceId).toBeDefined();
    const post = () => collector.spans.find((span) => span.spanId === postSpanId && span.traceId === traceId);
    expect(await eventually(() => post() !== undefined, 10_000)).toBe(true);
    expect(post()!.kind).toBe(SPAN_KIND.CLIENT);
    const ancestors = () => collector.ancestors(post()!);
    expect(await eventually(() => ancestors().some((span) => span.name === 'timers claim'), 10_000)).toBe(true);
    return ancestors().map(({ name, kind }) => ({ name, kind }));
  }

  it("traces a timer claimed ahead from its claim to its webhook POST and sends the POST's trace context to the receiver", async () => {
    // Due in a second: claimed ahead (armed), so the claiming process sends it itself, without the queue.
    const ancestors = await tracedTimer(1);
    expect(ancestors.some((span) => span.name === 'timers claim')).toBe(true);
  });

  it('traces a timer claimed when due through the delivery queue to its webhook POST', async () => {
    // Due now: claimed due, so it goes through the delivery queue (claim -> job added -> job processed -> POST).
    const ancestors = await tracedTimer(0);
    expect(ancestors.some((span) => span.kind === SPAN_KIND.CONSUMER)).toBe(true);
  });

  it('writes the job id, the queue and the trace id on every log line of a job', async () => {
    const mongo = await new MongoClient(mongoUrl).connect();
    // An increment MongoDB refuses for good: the flush job logs the dead letter it sets aside.
    await mongo
      .db(dbName)
      .collection<{ _id: string; value: string }>('counters')
      .insertOne({ _id: 'poison', value: 'x' });
    await mongo.close();
    await fetch(`${base}/api/v1/increment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'poison', value: 1 }),
    });
    const deadLetterLine = () => workerLogs.find((line) => String(line.msg).includes('set aside as dead letters'));
    expect(await eventually(() => deadLetterLine() !== undefined, 20_000, 100)).toBe(true);
    const line = deadLetterLine()!;
    expect(line).toMatchObject({
      queue: FLUSH_QUEUE,
      jobId: expect.any(String),
      trace_id: expect.stringMatching(/^[0-9a-f]{32}$/),
    });
    // The trace id is the flush job's: its processing span is in the collector under that trace.
    const jobSpan = () =>
      collector.spans.find(
        (span) => span.traceId === line.trace_id && span.kind === SPAN_KIND.CONSUMER && span.name.includes(FLUSH_QUEUE),
      );
    expect(await eventually(() => jobSpan() !== undefined, 10_000)).toBe(true);
  });
});
