import { Gauge } from 'prom-client';
import { processMetric } from '../metrics/registry';

type ReportSource = () => Promise<{ details: Record<string, { status: string }> }>;

let latestReport: ReportSource | undefined;

/**
 * `health_check_up{check="redis"|"mongodb"|"flush"}`: 1 when the check passes, read at scrape time from
 * the same checks `/health/ready` runs, so a MongoDB outage or a lagging flush alerts although the api
 * stays ready. The latest app built in the process is the one measured.
 */
export function reportHealthInMetrics(report: ReportSource): void {
  latestReport = report;
  processMetric(
    'health_check_up',
    () =>
      new Gauge({
        name: 'health_check_up',
        help: 'Whether a readiness check passes (1) or not (0); only redis decides /health/ready',
        labelNames: ['check'],
        async collect() {
          if (!latestReport) return;
          const { details } = await latestReport();
          for (const [check, { status }] of Object.entries(details)) this.set({ check }, status === 'up' ? 1 : 0);
        },
      }),
  );
}
