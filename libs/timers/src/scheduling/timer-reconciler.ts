import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { TimersRepository } from '../storage/timers.repository';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { DueIndex } from '../storage/due-index/due-index';

/**
 * Rebuilds the Redis schedule from MongoDB: on worker start and then every period, every unfinished
 * timer whose next attempt falls within the next two periods is (re-)added to the due index, with its
 * delivery (url, attempts) staged, so that sending it needs no MongoDB read. So a Redis wipe or a failed
 * index write delays a timer by at most one period, and timers that fell due while no worker ran fire
 * right after start. Re-adding is harmless: the script skips timers being delivered (leased) and those
 * settled since MongoDB was read, and never moves a timer earlier.
 */
@Injectable()
export class TimerReconciler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TimerReconciler.name);
  private timer?: NodeJS.Timeout;
  private current?: Promise<number>;

  constructor(
    private readonly timers: TimersRepository,
    private readonly dueIndex: DueIndex,
    @Inject(TIMERS_CONFIG) private readonly config: TimersConfig,
  ) {}

  onApplicationBootstrap(): void {
    // In the background: with millions of timers the first pass may take a while, and the due index
    // (when Redis kept it) lets the scheduler fire overdue timers meanwhile.
    void this.runOnce();
    this.timer = setInterval(() => void this.runOnce(), this.config.TIMERS_RECONCILE_INTERVAL_MS);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.current;
  }

  /** One pass; returns how many timers it (re-)indexed. Never throws: the next period tries again. */
  runOnce(): Promise<number> {
    if (!this.current) {
      this.current = this.reconcile()
        .catch((error: Error) => {
          this.logger.warn(`reconciling timers failed: ${error.message}`);
          return 0;
        })
        .finally(() => (this.current = undefined));
    }
    return this.current;
  }

  private async reconcile(): Promise<number> {
    const started = Date.now();
    const period = this.config.TIMERS_RECONCILE_INTERVAL_MS;
    const horizon = new Date(started + 2 * period);
    // Settled marks matter only to passes that read a timer before it settled; they are kept for two
    // periods before the start of the latest pass. A pass that takes longer than two periods could re-add
    // a timer settled while it ran (that timer would be sent again).
    const forgetSettledBefore = started - 2 * period;
    let indexed = 0;
    for await (const batch of this.timers.schedulable(horizon, 1_000)) {
      indexed += await this.dueIndex.reconcile(
        batch.map(({ id, runAt, url, attempts }) => ({ id, runAt, staged: { url, attempts } })),
        forgetSettledBefore,
      );
    }
    return indexed;
  }
}
