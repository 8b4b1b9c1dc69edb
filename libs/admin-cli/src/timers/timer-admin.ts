import { Injectable } from '@nestjs/common';
import { DueIndex, TimersService, TimerStatus } from '@bufferq/timers';

/** What `timers stats` shows: timers per status (MongoDB, every tenant) and the schedule in Redis. */
export interface TimerSummary {
  byStatus: Record<TimerStatus, number>;
  schedule: Awaited<ReturnType<DueIndex['stats']>>;
}

/** An operator's handle on the timers: counts across tenants, and sending failed timers again. */
@Injectable()
export class TimerAdmin {
  constructor(
    private readonly timers: TimersService,
    private readonly dueIndex: DueIndex,
  ) {}

  async stats(): Promise<TimerSummary> {
    const [byStatus, schedule] = await Promise.all([this.timers.countByStatus(), this.dueIndex.stats()]);
    return { byStatus, schedule };
  }

  /** Sends up to `limit` failed timers again now with a fresh attempt budget; returns their ids. */
  retryFailed(limit: number): Promise<string[]> {
    return this.timers.retryAllFailed(limit);
  }
}
