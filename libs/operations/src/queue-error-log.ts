import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { Queue } from 'bullmq';
import { systemQueues } from './board/system-queues';

/** One warning per queue per this long; the others are counted into the next one. */
export const QUEUE_ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Logs the connection errors of every BullMQ queue the app has (Redis restarting or away, a Cluster
 * failover), through the app's logger, at most once per queue per QUEUE_ERROR_LOG_INTERVAL_MS. Without a
 * listener BullMQ writes each one with `console.error`, a multi-line stack outside the structured log, on
 * every reconnect attempt of every queue. The queue reconnects by itself; its calls fail meanwhile, and
 * their callers say so.
 */
@Injectable()
export class QueueErrorLog implements OnModuleInit {
  private readonly logger = new Logger('Queues');

  constructor(private readonly discovery: DiscoveryService) {}

  onModuleInit(): void {
    for (const queue of systemQueues(this.discovery)) this.watch(queue);
  }

  private watch(queue: Queue): void {
    let lastLoggedAt = -Infinity;
    let unlogged = 0;
    queue.on('error', (error: Error) => {
      const now = Date.now();
      if (now - lastLoggedAt < QUEUE_ERROR_LOG_INTERVAL_MS) {
        unlogged++;
        return;
      }
      const more = unlogged > 0 ? ` (and ${unlogged} more since the last warning)` : '';
      this.logger.warn(`queue ${queue.name}: ${error.message}${more}`);
      lastLoggedAt = now;
      unlogged = 0;
    });
  }
}
