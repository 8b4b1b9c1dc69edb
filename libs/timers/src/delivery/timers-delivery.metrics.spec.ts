import { statusClass, TimersDeliveryMetrics } from './timers-delivery.metrics';

describe('timers delivery metrics', () => {
  it('labels each POST by the class of its answer, or by why there was none', () => {
    expect(statusClass({ delivered: true, status: 204 })).toBe('2xx');
    expect(statusClass({ delivered: false, retryable: true, error: 'HTTP 503' })).toBe('5xx');
    expect(statusClass({ delivered: false, retryable: false, error: 'HTTP 301 (redirects are not followed)' })).toBe(
      '3xx',
    );
    expect(statusClass({ delivered: false, retryable: true, error: 'timed out after 10000 ms' })).toBe('timeout');
    expect(statusClass({ delivered: false, retryable: true, error: 'network error: ECONNREFUSED connect' })).toBe(
      'network',
    );
    expect(statusClass({ delivered: false, retryable: false, error: 'invalid url x' })).toBe('refused');
  });

  it('adds the POSTs counted since the last scrape to the counter at each scrape, per outcome and status class', async () => {
    const metrics = new TimersDeliveryMetrics();
    const delivered = /^timers_deliveries_total\{outcome="delivered",status_class="2xx"\} (\d+)$/m;
    const retried = /^timers_deliveries_total\{outcome="retry-scheduled",status_class="5xx"\} (\d+)$/m;
    for (let i = 0; i < 3; i++) metrics.sent('delivered', { delivered: true, status: 200 });
    metrics.sent('retry-scheduled', { delivered: false, retryable: true, error: 'HTTP 503' });
    let text = await metrics.registry.metrics();
    expect(delivered.exec(text)?.[1]).toBe('3');
    expect(retried.exec(text)?.[1]).toBe('1');
    metrics.sent('delivered', { delivered: true, status: 204 });
    text = await metrics.registry.metrics();
    expect(delivered.exec(text)?.[1]).toBe('4');
    expect(retried.exec(text)?.[1]).toBe('1');
  });
});
