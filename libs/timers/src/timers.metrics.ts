import { Injectable } from '@nestjs/common';
import { CapabilityMetrics } from '@bufferq/operations';
import { DueIndex, ScheduleStats } from './storage/due-index/due-index';

/** The gauges and what each reads from the schedule at scrape time. */
const SCHEDULE_GAUGES: Array<{ name: string; help: string; value: (stats: ScheduleStats) => number }> = [
  {
    name: 'timers_scheduled',
    help: 'Timers waiting in the Redis due index (pending, or a retry scheduled), not claimed by a worker',
    value: (stats) => stats.scheduled,
  },
  {
    name: 'timers_overdue',
    help: 'Timers already due that no worker has claimed yet (stays above 0: workers are missing or behind)',
    value: (stats) => stats.overdue,
  },
  {
    name: 'timers_overdue_oldest_seconds',
    help: 'How long the most overdue unclaimed timer has been due',
    value: (stats) => stats.oldestOverdueMs / 1000,
  },
  {
    name: 'timers_claimed',
    help: 'Timers claimed by a worker: being sent, their outcome being recorded, or armed',
    value: (stats) => stats.claimed,
  },
  {
    name: 'timers_armed',
    help: 'Timers claimed ahead of their run time, held by a worker until they fall due',
    value: (stats) => stats.armed,
  },
];

/** The schedule in Redis (api and worker): five gauges read with one round trip per scrape. */
@Injectable()
export class TimersScheduleMetrics extends CapabilityMetrics {
  constructor(dueIndex: DueIndex) {
    super();
    const stats = this.oncePerScrape(() => dueIndex.stats());
    for (const gauge of SCHEDULE_GAUGES) {
      this.gauge({
        name: gauge.name,
        help: gauge.help,
        async collect() {
          // Redis unreachable: the scrape still answers, with NaN (unknown) rather than a stale number.
          this.set(await stats().then(gauge.value, () => NaN));
        },
      });
    }
  }
}
