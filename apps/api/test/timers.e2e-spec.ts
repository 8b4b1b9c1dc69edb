import { createHash } from 'node:crypto';
import { INestApplicationContext } from '@nestjs/common';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Db, MongoClient, ObjectId } from 'mongodb';
import { eventually, sleep, testServices, uniqueName, WebhookReceiver } from '@bufferq/testing';
import { startApi, startWorker } from './api-harness';

describe('timers api (e2e: api and worker apps as production builds them)', () => {
  let api: NestFastifyApplication;
  let worker: INestApplicationContext;
  let receiver: WebhookReceiver;
  let mongo: MongoClient;
  let db: Db;
  const dbName = uniqueName('timers_e2e');
  const env = {
    TIMERS_REDIS_PREFIX: uniqueName('te2e'),
    TIMERS_ALLOW_PRIVATE_TARGETS: 'true',
    TIMERS_SCHEDULER_POLL_MS: '20',
    TIMERS_MAX_DELAY_SECONDS: '86400',
    TIMERS_MAX_URL_LENGTH: '100',
    WORKER_ROLES: 'timers',
  };

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    api = await startApi(dbName, env);
    worker = await startWorker(dbName, env);
    mongo = await new MongoClient(testServices().mongoUrl).connect();
    db = mongo.db(dbName);
  });
  afterAll(async () => {
    await db.dropDatabase();
    await mongo.close();
    await worker.close();
    await api.close();
    await receiver.stop();
  });

  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    api.inject({
      method: 'POST',
      url: '/timers',
      payload: payload as object,
      headers: { 'content-type': 'application/json', ...headers },
    });
  const get = (url: string) => api.inject({ method: 'GET', url });

  it('creates a timer (201 { id }), counts time_left down, fires POST <url>/<id> with an empty body, then reads 0', async () => {
    const created = await post({ seconds: 2, url: `${receiver.url}/hook` });
    expect(created.statusCode).toBe(201);
    const { id } = created.json();
    expect(Object.keys(created.json())).toEqual(['id']);

    const first = (await get(`/timers/${id}`)).json();
    expect(first).toMatchObject({
      id,
      time_left: 2,
      status: 'pending',
      attempts: 0,
      last_error: null,
    });
    await sleep(1_100);
    expect((await get(`/timers/${id}`)).json().time_left).toBe(1);

    expect(await eventually(() => receiver.requestsFor(`/hook/${id}`).length === 1, 3_000)).toBe(true);
    const [request] = receiver.requestsFor(`/hook/${id}`);
    expect(request).toMatchObject({ method: 'POST', body: '' });
    expect(request.at).toBeGreaterThanOrEqual(new Date(first.due_at).getTime());
    expect(await eventually(async () => (await get(`/timers/${id}`)).json().status === 'delivered', 2_000)).toBe(true);
    expect((await get(`/timers/${id}`)).json()).toMatchObject({ time_left: 0, attempts: 1 });
  });

  it('exports the schedule as Prometheus gauges on /metrics', async () => {
    const gauge = async (name: string) => {
      const text = (await get('/metrics')).body;
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line === undefined ? undefined : Number(line.split(' ')[1]);
    };
    const before = await gauge('timers_scheduled');
    expect(before).toEqual(expect.any(Number));
    for (let i = 0; i < 3; i++) expect((await post({ hours: 1, url: `${receiver.url}/later` })).statusCode).toBe(201);
    expect(await gauge('timers_scheduled')).toBe(before! + 3);
    // A running worker claims due timers at once: none waits unclaimed.
    expect(await gauge('timers_overdue')).toBe(0);
    expect(await gauge('timers_overdue_oldest_seconds')).toBe(0);
    expect(await gauge('timers_claimed')).toEqual(expect.any(Number));
    expect(await gauge('timers_armed')).toEqual(expect.any(Number));
  });

  it('answers 404 for an unknown or malformed id', async () => {
    expect((await get('/timers/0123456789abcdef01234567')).statusCode).toBe(404);
    expect((await get('/timers/not-an-id')).statusCode).toBe(404);
    expect((await api.inject({ method: 'DELETE', url: '/timers/0123456789abcdef01234567' })).statusCode).toBe(404);
  });

  it.each([
    ['a negative field', { hours: -1, url: 'https://example.com' }, 'hours'],
    ['a fractional field', { minutes: 1.5, url: 'https://example.com' }, 'minutes'],
    ['a numeric string', { seconds: '5', url: 'https://example.com' }, 'seconds'],
    ['a null field', { hours: null, url: 'https://example.com' }, 'hours'],
    ['a missing url', { seconds: 1 }, 'url'],
    ['a relative url', { seconds: 1, url: '/hook' }, 'url'],
    ['a non-http url', { seconds: 1, url: 'ftp://example.com/x' }, 'url'],
    ['a url with credentials', { seconds: 1, url: 'https://user:secret@example.com/' }, 'url'],
    ['a url over the configured length', { seconds: 1, url: `https://example.com/${'a'.repeat(100)}` }, 'url'],
    ['a total over the configured maximum', { hours: 24, seconds: 1, url: 'https://example.com' }, 'hours'],
  ])('rejects %s with 400 naming the field', async (_case, body, field) => {
    const response = await post(body);
    expect(response.statusCode).toBe(400);
    expect(response.json().errors.map((issue: { path: string[] }) => issue.path[0])).toContain(field);
  });

  it('rejects unknown fields, non-object bodies and malformed JSON with 400', async () => {
    const unknown = await post({ seconds: 1, url: 'https://example.com', days: 1 });
    expect(unknown.statusCode).toBe(400);
    expect(JSON.stringify(unknown.json().errors)).toContain('days');
    expect((await post([1, 2])).statusCode).toBe(400);
    const malformed = await api.inject({
      method: 'POST',
      url: '/timers',
      payload: '{"seconds": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.statusCode).toBe(400);
  });

  it('returns the first timer for a repeated Idempotency-Key, also under concurrent repeats', async () => {
    const key = uniqueName('key');
    const first = await post({ hours: 1, url: 'https://example.com/a' }, { 'idempotency-key': key });
    const again = await post({ hours: 1, url: 'https://example.com/a' }, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    expect(again.json().id).toBe(first.json().id);
    expect(again.headers['idempotent-replayed']).toBe('true');

    const raceKey = uniqueName('race');
    const racing = await Promise.all(
      Array.from({ length: 5 }, () => post({ hours: 1, url: 'https://example.com/b' }, { 'idempotency-key': raceKey })),
    );
    expect(new Set(racing.map((response) => response.json().id)).size).toBe(1);
    expect(await db.collection('timers').countDocuments({ idempotencyKey: { $in: [key, raceKey] } })).toBe(2);

    const other = await post({ hours: 1, url: 'https://example.com/a' }, { 'idempotency-key': uniqueName('key') });
    expect(other.json().id).not.toBe(first.json().id);
    const bad = await post({ hours: 1, url: 'https://example.com/a' }, { 'idempotency-key': 'x'.repeat(256) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].path).toEqual(['Idempotency-Key']);
  });

  it('cancels a pending timer (DELETE), which then never fires and cannot be cancelled again', async () => {
    const { id } = (await post({ seconds: 1, url: `${receiver.url}/cancel` })).json();
    const cancelled = await api.inject({ method: 'DELETE', url: `/timers/${id}` });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ id, status: 'cancelled' });
    expect((await api.inject({ method: 'DELETE', url: `/timers/${id}` })).statusCode).toBe(409);
    await sleep(1_300);
    expect(receiver.requestsFor(`/cancel/${id}`)).toHaveLength(0);
    expect((await get(`/timers/${id}`)).json().status).toBe('cancelled');
  });

  it('lists timers newest first with a cursor, filters by status, and validates the query', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post({ hours: 2, url: `https://example.com/list/${i}` })).json().id);
    await api.inject({ method: 'DELETE', url: `/timers/${ids[1]}` });

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: Array<{ id: string }>; next_cursor: string | null } = (
        await get(`/timers?limit=2&status=pending${cursor ? `&cursor=${cursor}` : ''}`)
      ).json();
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((item) => item.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining([ids[4], ids[3], ids[2], ids[0]]));
    expect(seen).not.toContain(ids[1]);
    expect(seen.indexOf(ids[4])).toBeLessThan(seen.indexOf(ids[0]));

    const cancelled = (await get('/timers?status=cancelled'))
      .json()
      .items.map((item: { status: string }) => item.status);
    expect(cancelled.length).toBeGreaterThan(0);
    expect(new Set(cancelled)).toEqual(new Set(['cancelled']));
    expect((await get('/timers?status=sleeping')).statusCode).toBe(400);
    expect((await get('/timers?limit=0')).statusCode).toBe(400);
    expect((await get('/timers?cursor=zzz')).statusCode).toBe(400);
  });

  it('retries only failed timers: 409 for a pending one', async () => {
    const { id } = (await post({ hours: 1, url: 'https://example.com/retry' })).json();
    expect((await api.inject({ method: 'POST', url: `/timers/${id}/retry` })).statusCode).toBe(409);
  });

  describe('with API keys: each key is a tenant', () => {
    const keyA = 'tenant-a-key-6f1d2c93';
    const keyB = 'tenant-b-key-0a7e44b5';
    /** The tenant id the api stores for a key: the first 32 hex digits of its SHA-256. */
    const tenantOf = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 32);
    let keyed: NestFastifyApplication;
    beforeAll(async () => {
      keyed = await startApi(dbName, { ...env, API_KEYS: `${keyA},${keyB}` });
    });
    afterAll(() => keyed.close());

    const as = (key: string) => ({
      post: (payload: object, headers: Record<string, string> = {}) =>
        keyed.inject({
          method: 'POST',
          url: '/timers',
          payload,
          headers: { 'content-type': 'application/json', 'x-api-key': key, ...headers },
        }),
      request: (method: 'GET' | 'DELETE' | 'POST', url: string) =>
        keyed.inject({ method, url, headers: { 'x-api-key': key } }),
    });
    const listIds = async (key: string, query = '') =>
      (await as(key).request('GET', `/timers?limit=500${query}`)).json().items.map((item: { id: string }) => item.id);

    it("answers 404 for another key's timer on read, cancel and retry, and lists only the key's own", async () => {
      const { id } = (await as(keyA).post({ hours: 1, url: 'https://example.com/tenant-a' })).json();
      expect((await as(keyA).request('GET', `/timers/${id}`)).statusCode).toBe(200);
      for (const [method, url] of [
        ['GET', `/timers/${id}`],
        ['DELETE', `/timers/${id}`],
        ['POST', `/timers/${id}/retry`],
      ] as const)
        expect((await as(keyB).request(method, url)).statusCode).toBe(404);
      expect(await listIds(keyA)).toContain(id);
      expect(await listIds(keyB)).not.toContain(id);
      expect(await listIds(keyB, '&status=pending')).not.toContain(id);
      // B's refused cancel changed nothing: A still cancels it.
      expect((await as(keyA).request('DELETE', `/timers/${id}`)).json()).toMatchObject({
        id,
        status: 'cancelled',
      });
    });

    it('keeps Idempotency-Keys apart per key: the same header from two keys makes two timers', async () => {
      const idempotencyKey = uniqueName('shared');
      const headers = { 'idempotency-key': idempotencyKey };
      const first = await as(keyA).post({ hours: 1, url: 'https://example.com/idem' }, headers);
      const other = await as(keyB).post({ hours: 1, url: 'https://example.com/idem' }, headers);
      expect([first.statusCode, other.statusCode]).toEqual([201, 201]);
      expect(other.headers['idempotent-replayed']).toBeUndefined();
      expect(other.json().id).not.toBe(first.json().id);
      const replay = await as(keyB).post({ hours: 1, url: 'https://example.com/idem' }, headers);
      expect(replay.json().id).toBe(other.json().id);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect((await as(keyA).request('GET', `/timers/${other.json().id}`)).statusCode).toBe(404);
    });

    it("stores the key's digest as the timer's tenant, never the key itself", async () => {
      const { id } = (
        await as(keyA).post(
          { hours: 1, url: 'https://example.com/digest' },
          { 'idempotency-key': uniqueName('digest') },
        )
      ).json();
      const stored = await db.collection('timers').findOne({ _id: ObjectId.createFromHexString(id) });
      expect(stored).toMatchObject({ tenant: tenantOf(keyA) });
      expect(JSON.stringify(stored)).not.toContain(keyA);
    });

    it('shows timers created without API keys (no tenant stored) to the default tenant only', async () => {
      const keyless = (await post({ hours: 1, url: 'https://example.com/keyless' })).json().id;
      // A timer as the version before tenants stored it: no tenant field.
      const legacy = new ObjectId();
      const dueAt = new Date(Date.now() + 3_600_000);
      await db.collection('timers').insertOne({
        _id: legacy,
        url: 'https://example.com/legacy',
        dueAt,
        runAt: dueAt,
        status: 'pending',
        attempts: 0,
        lastError: null,
        createdAt: new Date(),
        updatedAt: new Date(),
      });
      for (const id of [keyless, legacy.toHexString()]) {
        expect((await get(`/timers/${id}`)).statusCode).toBe(200);
        for (const key of [keyA, keyB]) expect((await as(key).request('GET', `/timers/${id}`)).statusCode).toBe(404);
      }
      const defaultList = (await get('/timers?limit=500')).json().items.map((item: { id: string }) => item.id);
      expect(defaultList).toEqual(expect.arrayContaining([keyless, legacy.toHexString()]));
      expect(await listIds(keyA)).not.toContain(legacy.toHexString());
    });
  });
});
