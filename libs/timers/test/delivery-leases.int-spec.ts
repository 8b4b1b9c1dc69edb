import { Redis } from 'ioredis';
import { ObjectId } from 'mongodb';
import { FaultProxy, testServices, uniqueName } from '@bufferq/testing';
import { DeliveryLeases } from '../src/delivery/delivery-leases';
import { DueIndex } from '../src/storage/due-index/due-index';
import { fastTimersConfig } from './fixtures/timers-harness';

// A batch whose first lease renewal fails is not delivered (its job fails, or an armed batch gives up);
// its timers must be left to lapse so that a scheduler claims them again. Renewing them on after the
// failure would keep them claimed, and unsent, for as long as the process lives.
describe('DeliveryLeases (real Redis, the connection dropped mid-renewal)', () => {
  const { redisUrl } = testServices();
  let proxy: FaultProxy;
  let direct: Redis;
  let flaky: Redis;
  let leases: DeliveryLeases;

  beforeAll(async () => {
    proxy = await new FaultProxy(Number(new URL(redisUrl).port)).start();
    direct = new Redis(redisUrl);
    // No re-send after a cut: the renewal whose reply was dropped fails, as it does once retries run out.
    flaky = new Redis(proxy.url, { maxRetriesPerRequest: 0 });
  });
  afterAll(async () => {
    leases?.onApplicationShutdown();
    flaky.disconnect();
    await direct.quit();
    await proxy.stop();
  });

  it('lets the leases of a batch whose renewal failed lapse, so the timers are claimed again', async () => {
    const config = fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('tleases'), TIMERS_DELIVERY_LOCK_MS: '900' });
    const scheduler = new DueIndex(direct, config);
    leases = new DeliveryLeases(new DueIndex(flaky, config), config);
    const id = new ObjectId().toHexString();
    const now = Date.now();
    await scheduler.schedule([{ id, runAt: now - 1_000 }], now);
    expect((await scheduler.claimDue(now, 10)).map((timer) => timer.id)).toEqual([id]);
    await flaky.ping();

    const dropped = proxy.dropNextReply();
    await expect(leases.hold([id])).rejects.toThrow();
    await dropped;
    expect(leases.size).toBe(0);

    // The flaky client reconnects; renewals (every 300 ms) must not keep the lease alive. Past the
    // lease, another scheduler claims the timer again.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await scheduler.claimDue(Date.now(), 10)).map((timer) => timer.id)).toEqual([id]);
  });
});
