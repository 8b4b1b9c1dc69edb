import { createHmac } from 'node:crypto';
import { ObjectId } from 'mongodb';
import { eventually, sleep, testServices, uniqueName, WebhookReceiver } from '@bufferq/testing';
import { Job, UnrecoverableError } from 'bullmq';
import { TIMERS_COLLECTION } from '../src/storage/timers.repository';
import { TimerDeliveryProcessor } from '../src/delivery/timer-delivery.processor';
import { DueIndex } from '../src/storage/due-index/due-index';
import { DeliveryClock } from '../src/delivery/delivery-clock';
import { TimerDeliveryQueue } from '../src/storage/timer-delivery-queue';
import { WebhookSender } from '../src/delivery/webhook/webhook-sender';
import { fastTimersConfig, startTimers, TimersContext } from './fixtures/timers-harness';

describe('timer delivery (real Redis, MongoDB-wire server and a local receiver)', () => {
  const { redisUrl, mongoUrl } = testServices();
  const mongoDb = uniqueName('timers_delivery');
  let receiver: WebhookReceiver;
  let ctx: TimersContext;
  const config = fastTimersConfig({
    TIMERS_REDIS_PREFIX: uniqueName('tdel'),
    TIMERS_MAX_CONCURRENCY_PER_HOST: '3',
  });

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    ctx = await startTimers({ redisUrl, mongoUrl, mongoDb, config, worker: true });
  });
  afterAll(async () => {
    await ctx.db.dropDatabase();
    await ctx.close();
    await receiver.stop();
  });
  beforeEach(() => {
    receiver.behaviour = () => 200;
    receiver.respondAfter(0);
  });

  const statusOf = async (id: string) => (await ctx.timers.get(id)).status;
  const createDueNow = (url: string) => ctx.timers.create({ hours: 0, minutes: 0, seconds: 0, url });

  it('fires on time with POST <url>/<id>, an empty body and a verifiable signature', async () => {
    const createdAt = Date.now();
    const { id } = await ctx.timers.create({
      hours: 0,
      minutes: 0,
      seconds: 1,
      url: `${receiver.url}/hooks/`,
    });
    expect(await eventually(() => receiver.requestsFor(`/hooks/${id}`).length > 0, 5_000)).toBe(true);
    const [request] = receiver.requestsFor(`/hooks/${id}`);
    expect(request.method).toBe('POST');
    expect(request.body).toBe('');
    expect(request.headers['content-length']).toBe('0');
    // Not before it is due; well within a second after (poll 20 ms).
    expect(request.at - createdAt).toBeGreaterThanOrEqual(1_000);
    expect(request.at - createdAt).toBeLessThan(1_800);
    const deliveryId = request.headers['webhook-id'] as string;
    const timestamp = request.headers['webhook-timestamp'] as string;
    expect(deliveryId).toBe(id);
    const expected = createHmac('sha256', config.TIMERS_SIGNING_SECRET)
      .update(`${deliveryId}.${timestamp}.`)
      .digest('base64');
    expect(request.headers['webhook-signature']).toBe(`v1,${expected}`);
    expect(await eventually(async () => (await statusOf(id)) === 'delivered', 2_000)).toBe(true);
    const view = await ctx.timers.get(id);
    expect(view).toMatchObject({ attempts: 1, time_left: 0, last_error: null });
    expect(view.delivered_at).not.toBeNull();
  });

  it('retries a receiver that fails twice and is delivered on the third attempt, same delivery id each time', async () => {
    receiver.behaviour = (_request, count) => (count <= 2 ? 503 : 204);
    const { id } = await createDueNow(receiver.url);
    expect(await eventually(async () => (await statusOf(id)) === 'delivered', 8_000)).toBe(true);
    const requests = receiver.requestsFor(`/${id}`);
    expect(requests).toHaveLength(3);
    expect(new Set(requests.map((request) => request.headers['webhook-id']))).toEqual(new Set([id]));
    // Backoff between attempts: base 100 ms with jitter, so at least 50 ms, then at least 100 ms.
    expect(requests[1].at - requests[0].at).toBeGreaterThanOrEqual(50);
    expect(requests[2].at - requests[1].at).toBeGreaterThanOrEqual(100);
    expect(await ctx.timers.get(id)).toMatchObject({
      status: 'delivered',
      attempts: 3,
      last_error: 'HTTP 503',
    });
  });

  it('marks a timer failed after the configured attempts when the receiver always fails, and retries it by request', async () => {
    receiver.behaviour = () => 500;
    const { id } = await createDueNow(receiver.url);
    expect(await eventually(async () => (await statusOf(id)) === 'failed', 8_000)).toBe(true);
    await sleep(500); // no further attempt after `failed`
    expect(receiver.requestsFor(`/${id}`)).toHaveLength(3);
    expect(await ctx.timers.get(id)).toMatchObject({
      status: 'failed',
      attempts: 3,
      last_error: 'HTTP 500',
      next_attempt_at: null,
    });

    receiver.behaviour = () => 200;
    // Sent again now: due, so it shows as being delivered.
    expect(await ctx.timers.retry(id)).toMatchObject({ status: 'delivering', attempts: 0 });
    expect(await eventually(async () => (await statusOf(id)) === 'delivered', 5_000)).toBe(true);
    expect(receiver.requestsFor(`/${id}`)).toHaveLength(4);
    await expect(ctx.timers.retry(id)).rejects.toThrow(/only a failed timer/);
  });

  it('records a delivered outcome once the POSTs in flight have ended, so a burst sends before it records', async () => {
    // `/held/` answers only after the deadline (1 s in these tests): its POST stays in flight that long.
    receiver.behaviour = (request) => (request.path.startsWith('/held/') ? 'hang' : 200);
    const [held, quick] = await ctx.timers.createMany([
      { hours: 0, minutes: 0, seconds: 0, url: `${receiver.url}/held` },
      { hours: 0, minutes: 0, seconds: 0, url: `${receiver.url}/quick` },
    ]);
    expect(await eventually(() => receiver.requestsFor(`/quick/${quick}`).length > 0, 5_000)).toBe(true);
    const sentAt = receiver.requestsFor(`/quick/${quick}`)[0].at;
    expect(receiver.requestsFor(`/held/${held}`)).toHaveLength(1);
    // Sent, and its outcome waits while the held POST is in flight...
    await sleep(400);
    expect(await statusOf(quick)).toBe('delivering');
    // ...and is recorded after that POST timed out.
    expect(await eventually(async () => (await statusOf(quick)) === 'delivered', 5_000)).toBe(true);
    const deliveredAt = Date.parse((await ctx.timers.get(quick)).delivered_at!);
    expect(deliveredAt - sentAt).toBeGreaterThanOrEqual(600);
    expect(await eventually(async () => (await ctx.timers.get(held)).attempts === 1, 5_000)).toBe(true);
  });

  it('records a delivered outcome once no armed timer falls due within a second, so a burst sends before it records', async () => {
    // A worker of its own: the shared one may still hold timers of earlier tests (their retries) armed.
    const own = await startTimers({
      redisUrl,
      mongoUrl,
      mongoDb: uniqueName('timers_deferral'),
      config: fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('tdefer') }),
      worker: true,
    });
    try {
      // `soon` is claimed ahead of its run time and held by the worker's clock (armed); `now` then falls due.
      const { id: soon } = await own.timers.create({ hours: 0, minutes: 0, seconds: 1.3, url: `${receiver.url}/soon` });
      expect(await eventually(() => own.app.get(DeliveryClock).size === 1, 2_000)).toBe(true);
      const { id: now } = await own.timers.create({ hours: 0, minutes: 0, seconds: 0, url: `${receiver.url}/now` });
      expect(await eventually(() => receiver.requestsFor(`/soon/${soon}`).length > 0, 5_000)).toBe(true);
      expect(await eventually(async () => (await own.timers.get(now)).status === 'delivered', 5_000)).toBe(true);
      // `now` was sent at once, with nothing in flight after it; its outcome waited for the armed timer.
      const nowSentAt = receiver.requestsFor(`/now/${now}`)[0].at;
      const soonSentAt = receiver.requestsFor(`/soon/${soon}`)[0].at;
      expect(soonSentAt - nowSentAt).toBeGreaterThanOrEqual(300);
      expect(Date.parse((await own.timers.get(now)).delivered_at!)).toBeGreaterThanOrEqual(soonSentAt);
    } finally {
      await own.db.dropDatabase();
      await own.close();
    }
  });

  it('retries 429 and timeouts, but fails at once on other 4xx and on redirects (never followed)', async () => {
    receiver.behaviour = (request, count) => {
      if (request.path.startsWith('/throttled/')) return count === 1 ? 429 : 200;
      if (request.path.startsWith('/slow/')) return count === 1 ? 'hang' : 200;
      if (request.path.startsWith('/gone/')) return 410;
      return { status: 302, location: `${receiver.url}/elsewhere` };
    };
    const throttled = await createDueNow(`${receiver.url}/throttled`);
    const slow = await createDueNow(`${receiver.url}/slow`);
    const gone = await createDueNow(`${receiver.url}/gone`);
    const moved = await createDueNow(`${receiver.url}/moved`);

    expect(await eventually(async () => (await statusOf(throttled.id)) === 'delivered', 5_000)).toBe(true);
    expect(await ctx.timers.get(throttled.id)).toMatchObject({
      attempts: 2,
      last_error: 'HTTP 429',
    });
    expect(await eventually(async () => (await statusOf(slow.id)) === 'delivered', 6_000)).toBe(true);
    expect(await ctx.timers.get(slow.id)).toMatchObject({
      attempts: 2,
      last_error: 'timed out after 1000 ms',
    });
    expect(await eventually(async () => (await statusOf(gone.id)) === 'failed', 5_000)).toBe(true);
    expect(await ctx.timers.get(gone.id)).toMatchObject({ attempts: 1, last_error: 'HTTP 410' });
    expect(await eventually(async () => (await statusOf(moved.id)) === 'failed', 5_000)).toBe(true);
    expect((await ctx.timers.get(moved.id)).last_error).toMatch(/HTTP 302 \(redirects are not followed\)/);
    expect(receiver.requestsFor('/elsewhere')).toHaveLength(0);
  });

  it('retries a network error (nothing listening) and records it', async () => {
    const closed = await new WebhookReceiver().start();
    const url = closed.url;
    await closed.stop();
    const { id } = await createDueNow(url);
    expect(await eventually(async () => (await statusOf(id)) === 'failed', 8_000)).toBe(true);
    expect(await ctx.timers.get(id)).toMatchObject({ attempts: 3 });
    expect((await ctx.timers.get(id)).last_error).toMatch(/network error: ECONNREFUSED/);
  });

  it('never has more deliveries in flight to one host than the per-host cap', async () => {
    receiver.respondAfter(150);
    receiver.maxInFlight = 0;
    const ids = await ctx.timers.createMany(
      Array.from({ length: 12 }, () => ({
        hours: 0,
        minutes: 0,
        seconds: 0,
        url: `${receiver.url}/capped`,
      })),
    );
    expect(
      await eventually(async () => (await Promise.all(ids.map(statusOf))).every((s) => s === 'delivered'), 8_000),
    ).toBe(true);
    expect(receiver.maxInFlight).toBe(3);
  });

  const keysOf = (id: string) => ctx.app.get(DueIndex).keysOf(id);
  const isArmed = async (id: string) => (await ctx.redis.zscore(keysOf(id).armed, id)) !== null;

  it('claims a timer ahead of its run time (armed) and sends it when it is due, not before', async () => {
    const { id } = await ctx.timers.create({
      ...{ hours: 0, minutes: 0, seconds: 2 },
      url: `${receiver.url}/armed`,
    });
    const dueAt = Date.parse((await ctx.timers.get(id)).due_at);
    // Claimed within the lookahead (1 s before it is due), held by the worker, not sent.
    expect(await eventually(() => isArmed(id), 2_000)).toBe(true);
    expect(Date.now()).toBeLessThan(dueAt);
    expect(receiver.requestsFor(`/armed/${id}`)).toHaveLength(0);
    expect(await statusOf(id)).toBe('pending');

    expect(await eventually(() => receiver.requestsFor(`/armed/${id}`).length > 0, 3_000)).toBe(true);
    const [request] = receiver.requestsFor(`/armed/${id}`);
    expect(request.at).toBeGreaterThanOrEqual(dueAt);
    // No scheduler poll or queue hop between due and sent: only the firing step.
    expect(request.at - dueAt).toBeLessThan(300);
    expect(await isArmed(id)).toBe(false);
    expect(await eventually(async () => (await statusOf(id)) === 'delivered', 3_000)).toBe(true);
  });

  it('cancels a timer claimed ahead of its run time: the worker holding it never sends it', async () => {
    const { id } = await ctx.timers.create({
      ...{ hours: 0, minutes: 0, seconds: 2 },
      url: `${receiver.url}/disarmed`,
    });
    expect(await eventually(() => isArmed(id), 2_000)).toBe(true);
    expect(await ctx.timers.cancel(id)).toMatchObject({ status: 'cancelled' });
    expect(await isArmed(id)).toBe(false);
    await sleep(2_000);
    expect(receiver.requestsFor(`/disarmed/${id}`)).toHaveLength(0);
    expect(await statusOf(id)).toBe('cancelled');
    expect(await ctx.redis.zscore(keysOf(id).leased, id)).toBeNull();
  });

  it('sends a timer claimed ahead of its run time without the delivery queue: armed timers fire while it is paused', async () => {
    const queue = ctx.app.get(TimerDeliveryQueue).queue;
    await queue.pause();
    try {
      const [armed, due] = await ctx.timers.createMany([
        { hours: 0, minutes: 0, seconds: 2, url: `${receiver.url}/armed-unqueued` },
        { hours: 0, minutes: 0, seconds: 0, url: `${receiver.url}/due-queued` },
      ]);
      const dueAt = Date.parse((await ctx.timers.get(armed)).due_at);
      expect(await eventually(() => receiver.requestsFor(`/armed-unqueued/${armed}`).length > 0, 4_000)).toBe(true);
      expect(receiver.requestsFor(`/armed-unqueued/${armed}`)[0].at).toBeGreaterThanOrEqual(dueAt);
      expect(await eventually(async () => (await statusOf(armed)) === 'delivered', 3_000)).toBe(true);
      // A due timer travels through the queue, for whichever worker is free: it waits while it is paused.
      expect(receiver.requestsFor(`/due-queued/${due}`)).toHaveLength(0);
      await queue.resume();
      expect(await eventually(() => receiver.requestsFor(`/due-queued/${due}`).length > 0, 3_000)).toBe(true);
    } finally {
      await queue.resume();
    }
  });

  it('warms up its sending path with POSTs to a server of its own, never to a timer target', async () => {
    const sender = new WebhookSender(config);
    try {
      const before = receiver.requests.length;
      expect(await sender.warmUp(300)).toBe(300);
      expect(receiver.requests.length).toBe(before);
      // Its connections to the throwaway server are gone; the sender still delivers.
      const { id } = await createDueNow(`${receiver.url}/after-warm-up`);
      expect(await sender.send(`${receiver.url}/after-warm-up`, id)).toMatchObject({ delivered: true });
    } finally {
      await sender.onApplicationShutdown();
    }
  });

  it('drops a malformed delivery job (no id, or a run time that is not a number) without retrying it', () => {
    const processor = ctx.app.get(TimerDeliveryProcessor);
    for (const timers of [[{ runAt: 1 }], [{ id: 'a', runAt: 'soon' }], 'not a list'])
      expect(() => processor.process({ id: 'bad', data: { timers } } as unknown as Job)).toThrow(UnrecoverableError);
  });

  it('does not fire a cancelled timer', async () => {
    const { id } = await ctx.timers.create({
      hours: 0,
      minutes: 0,
      seconds: 1,
      url: `${receiver.url}/cancelled`,
    });
    expect(await ctx.timers.cancel(id)).toMatchObject({ status: 'cancelled' });
    await sleep(1_500);
    expect(receiver.requestsFor(`/cancelled/${id}`)).toHaveLength(0);
    expect(await statusOf(id)).toBe('cancelled');
    await expect(ctx.timers.cancel(id)).rejects.toThrow(/only a pending timer/);
  });

  it('refuses (409) to cancel a timer being delivered or due, which then fires', async () => {
    receiver.behaviour = (request, count) => (request.path.startsWith('/busy/') && count === 1 ? 'hang' : 200);
    const busy = await ctx.timers.create({
      ...{ hours: 0, minutes: 0, seconds: 0 },
      url: `${receiver.url}/busy`,
    });
    expect(await eventually(() => receiver.requestsFor(`/busy/${busy.id}`).length === 1, 3_000)).toBe(true);
    expect(await statusOf(busy.id)).toBe('delivering');
    await expect(ctx.timers.cancel(busy.id)).rejects.toThrow(/being delivered|is delivering/);
    // Timed out (1 s), retried, delivered: the refused cancel changed nothing.
    expect(await eventually(async () => (await statusOf(busy.id)) === 'delivered', 6_000)).toBe(true);
  });

  it('cancels or fires, never both, when cancels race timers falling due', async () => {
    const ids = await ctx.timers.createMany(
      Array.from({ length: 20 }, () => ({
        hours: 0,
        minutes: 0,
        seconds: 1,
        url: `${receiver.url}/race`,
      })),
    );
    await sleep(960);
    const answers = await Promise.all(
      ids.map((id) =>
        ctx.timers.cancel(id).then(
          () => 'cancelled',
          (error: Error) => (/only a pending timer/.test(error.message) ? 'refused' : error.message),
        ),
      ),
    );
    await sleep(1_200);
    const fired = ids.map((id) => receiver.requestsFor(`/race/${id}`).length);
    answers.forEach((answer, i) => {
      expect(['cancelled', 'refused']).toContain(answer);
      expect(fired[i]).toBe(answer === 'cancelled' ? 0 : 1);
    });
  });
});

describe('timer delivery to private addresses when they are not allowed', () => {
  const { redisUrl, mongoUrl } = testServices();
  const mongoDb = uniqueName('timers_ssrf');
  let receiver: WebhookReceiver;
  let ctx: TimersContext;

  beforeAll(async () => {
    receiver = await new WebhookReceiver().start();
    ctx = await startTimers({
      redisUrl,
      mongoUrl,
      mongoDb,
      config: fastTimersConfig({
        TIMERS_REDIS_PREFIX: uniqueName('tssrf'),
        TIMERS_ALLOW_PRIVATE_TARGETS: 'false',
      }),
      worker: true,
    });
  });
  afterAll(async () => {
    await ctx.db.dropDatabase();
    await ctx.close();
    await receiver.stop();
  });

  it('refuses to create timers aimed at loopback, private or link-local literals and localhost', async () => {
    for (const url of [
      'http://127.0.0.1:9/x',
      'http://10.1.2.3/',
      'http://169.254.169.254/latest',
      'http://[::1]/',
      'http://[::ffff:192.168.0.1]/',
      'http://localhost/',
    ]) {
      await expect(ctx.timers.create({ hours: 0, minutes: 0, seconds: 0, url })).rejects.toMatchObject({
        response: { errors: [expect.objectContaining({ path: ['url'] })] },
      });
    }
  });

  it('fails without sending a timer stored with a private target (created while they were allowed)', async () => {
    const port = new URL(receiver.url).port;
    const now = new Date();
    const stored = ['127.0.0.1', 'localhost', '[::1]'].map((host) => ({
      _id: new ObjectId(),
      url: `http://${host}:${port}/`,
      dueAt: now,
      runAt: now,
      status: 'pending',
      attempts: 0,
      lastError: null,
      createdAt: now,
      updatedAt: now,
    }));
    // Straight into MongoDB: the reconciler indexes them, as it would after a configuration change.
    await ctx.db.collection(TIMERS_COLLECTION).insertMany(stored);
    for (const timer of stored) {
      const id = timer._id.toHexString();
      expect(await eventually(async () => (await ctx.timers.get(id)).status === 'failed', 5_000)).toBe(true);
      expect(await ctx.timers.get(id)).toMatchObject({
        attempts: 1,
        last_error: expect.stringMatching(/loopback|not public/),
      });
    }
    expect(receiver.requests).toHaveLength(0);
  });
});
