import { Injectable } from '@nestjs/common';
import { CapabilityMetrics } from '../metrics/capability-metrics';
import { ReadinessIndicators } from './readiness.indicators';

/**
 * `health_check_up{check}`: 1 when a readiness check passes, read at scrape time from the same checks
 * `/health/ready` runs (the datastores' and every capability's), so a MongoDB outage or a capability
 * falling behind alerts although the api stays ready.
 */
@Injectable()
export class ReadinessMetrics extends CapabilityMetrics {
  constructor(readiness: ReadinessIndicators) {
    super();
    this.gauge({
      name: 'health_check_up',
      help: 'Whether a readiness check passes (1) or not (0); only redis decides /health/ready',
      labelNames: ['check'],
      async collect() {
        const { details } = await readiness.report();
        for (const [check, { status }] of Object.entries(details)) this.set({ check }, status === 'up' ? 1 : 0);
      },
    });
  }
}
