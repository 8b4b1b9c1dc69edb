import type { DueIndex, ScheduleStats } from './storage/due-index/due-index';
import { statusClass, TimersScheduleMetrics } from './timers.metrics';

const dueIndexReading = (stats: () => Promise<ScheduleStats>) => ({ stats }) as unknown as DueIndex;

describe('timers metrics', () => {
  it('serves the five schedule gauges from one read per scrape', async () => {
    let reads = 0;
    const metrics = new TimersScheduleMetrics(
      dueIndexReading(async () => {
        reads++;
        return { scheduled: 4, overdue: 1, oldestOverdueMs: 2_500, claimed: 2, armed: 1 };
      }),
    );
    const text = await metrics.registry.metrics();
    expect(reads).toBe(1);
    expect(text).toMatch(/^timers_scheduled 4$/m);
    expect(text).toMatch(/^timers_overdue 1$/m);
    expect(text).toMatch(/^timers_overdue_oldest_seconds 2.5$/m);
    expect(text).toMatch(/^timers_claimed 2$/m);
    expect(text).toMatch(/^timers_armed 1$/m);
  });

  // prom-client writes NaN as `Nan`; Prometheus parses it either way.
  it('answers the scrape with NaN (unknown) while the schedule cannot be read', async () => {
    const metrics = new TimersScheduleMetrics(dueIndexReading(() => Promise.reject(new Error('connect ECONNREFUSED'))));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^timers_scheduled NaN$/im);
    expect(text).toMatch(/^timers_overdue NaN$/im);
  });

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
