import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { DueIndex } from '../storage/due-index/due-index';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';

/**
 * The timers this process is delivering, from the start of their batch until their outcome is recorded
 * in MongoDB and Redis. Their leases in the due index are renewed every third of
 * TIMERS_DELIVERY_LOCK_MS; when the process dies the renewals stop, the leases lapse and another
 * worker's scheduler claims the timers again (they are delivered again with the same delivery id).
 */
@Injectable()
export class DeliveryLeases implements OnApplicationShutdown {
  private readonly logger = new Logger(DeliveryLeases.name);
  private readonly held = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly dueIndex: DueIndex,
    @Inject(TIMERS_CONFIG) config: TimersConfig,
  ) {
    this.timer = setInterval(() => void this.renew(), config.TIMERS_DELIVERY_LOCK_MS / 3);
    this.timer.unref();
  }

  /**
   * Starts holding the timers (counted: a timer may be in two batches after a lease lapsed) and renews.
   * If that renewal fails the batch is not delivered, so the timers are let go at once: renewing them on
   * would keep them claimed, and unsent, for as long as this process lives.
   */
  async hold(ids: string[]): Promise<void> {
    for (const id of ids) this.held.set(id, (this.held.get(id) ?? 0) + 1);
    try {
      await this.dueIndex.renewLeases(ids);
    } catch (error) {
      for (const id of ids) this.release(id);
      throw error;
    }
  }

  release(id: string): void {
    const count = (this.held.get(id) ?? 1) - 1;
    if (count > 0) this.held.set(id, count);
    else this.held.delete(id);
  }

  get size(): number {
    return this.held.size;
  }

  /** Renews until DeliveryOutcomes recorded what it could (before application shutdown). */
  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  private async renew(): Promise<void> {
    if (!this.held.size) return;
    try {
      await this.dueIndex.renewLeases([...this.held.keys()]);
    } catch (error) {
      this.logger.warn(`renewing ${this.held.size} delivery leases failed: ${(error as Error).message}`);
    }
  }
}
