import { statusClass } from './timers-delivery.metrics';

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
});
