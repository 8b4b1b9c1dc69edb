import type { DueIndex, ScheduleStats } from './storage/due-index/due-index';
import { TimersScheduleMetrics } from './timers.metrics';

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
});
