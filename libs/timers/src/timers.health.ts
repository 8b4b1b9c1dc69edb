import { Injectable } from '@nestjs/common';
import { CapabilityHealth, HealthCheckFailed } from '@bufferq/operations';
import { DueIndex } from './storage/due-index/due-index';

/**
 * How long a due timer may wait unclaimed before the `timers` check is down: longer means no worker of
 * the `timers` role claims (none runs, or they are far behind).
 */
export const MAX_OVERDUE_MS = 30_000;

/** The `timers` check: the schedule answers and no due timer waits unclaimed past MAX_OVERDUE_MS. */
@Injectable()
export class TimersHealth extends CapabilityHealth {
  readonly check = 'timers';

  constructor(private readonly dueIndex: DueIndex) {
    super();
  }

  async probe(): Promise<Record<string, unknown>> {
    const { overdue, oldestOverdueMs } = await this.dueIndex.stats();
    const details = { overdue, oldestOverdueMs, maxOverdueMs: MAX_OVERDUE_MS };
    if (oldestOverdueMs > MAX_OVERDUE_MS) throw new HealthCheckFailed('due timers wait unclaimed', details);
    return details;
  }
}
