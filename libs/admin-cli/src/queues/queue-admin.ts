import { Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { systemQueues } from '@bufferq/operations';

/** Jobs per state in one queue. */
export interface QueueDepth {
  queue: string;
  /** The Redis key prefix the queue lives under. */
  prefix: string;
  paused: boolean;
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
  failed: number;
  completed: number;
}

const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;

/** Depths of every BullMQ queue the system uses: the same list the dashboard shows. */
@Injectable()
export class QueueAdmin {
  constructor(private readonly discovery: DiscoveryService) {}

  depths(): Promise<QueueDepth[]> {
    return Promise.all(
      systemQueues(this.discovery).map(async (queue) => {
        const [counts, paused] = await Promise.all([queue.getJobCounts(...STATES), queue.isPaused()]);
        return {
          queue: queue.name,
          prefix: queue.opts.prefix ?? 'bull',
          paused,
          ...(Object.fromEntries(STATES.map((state) => [state, counts[state] ?? 0])) as Record<
            (typeof STATES)[number],
            number
          >),
        };
      }),
    );
  }
}
