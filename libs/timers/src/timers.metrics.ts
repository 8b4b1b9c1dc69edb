import { Gauge, register } from 'prom-client';
import type { ScheduleStats } from './storage/due-index/due-index';

type StatsSource = () => Promise<ScheduleStats>;

let statsSource: StatsSource | undefined;
let scrape: Promise<ScheduleStats> | undefined;

/**
 * The schedule's stats for this scrape: prom-client calls every gauge's `collect` in one synchronous pass,
 * so the gauges share one Redis round trip; the next scrape reads again.
 */
function currentStats(): Promise<ScheduleStats> {
  if (!scrape) {
    scrape = statsSource!();
    queueMicrotask(() => (scrape = undefined));
  }
  return scrape;
}

/** The gauges and what each reads from the schedule at scrape time. */
const GAUGES: Array<{ name: string; help: string; value: (stats: ScheduleStats) => number }> = [
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

/**
 * The timers' Prometheus gauges in the default registry (served by the operations lib's /metrics): the
 * schedule in Redis, read once per scrape. The latest app built in the process is the one measured (one
 * app per process in production; tests build several).
 */
export function registerTimersMetrics(stats: StatsSource): void {
  statsSource = stats;
  for (const gauge of GAUGES) {
    if (register.getSingleMetric(gauge.name)) continue;
    new Gauge({
      name: gauge.name,
      help: gauge.help,
      async collect() {
        // Redis unreachable: the scrape still answers, with NaN (unknown) rather than a stale number.
        this.set(await currentStats().then(gauge.value, () => NaN));
      },
    });
  }
}
