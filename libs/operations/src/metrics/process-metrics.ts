import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { Queue } from 'bullmq';
import { collectDefaultMetrics } from 'prom-client';
import { providersOfKind } from '../discovered-providers';
import { CapabilityMetrics } from './capability-metrics';

/**
 * The process's metrics (Node.js defaults: CPU, memory, GC, event-loop lag) and the depth of every
 * BullMQ queue the app holds, by state, read at scrape time (one round trip per queue).
 */
@Injectable()
export class ProcessMetrics extends CapabilityMetrics implements OnApplicationBootstrap {
  private queues: Queue[] = [];

  constructor(private readonly discovery: DiscoveryService) {
    super();
    collectDefaultMetrics({ register: this.registry });
    const queues = () => this.queues;
    this.gauge({
      name: 'bullmq_queue_jobs',
      help: 'Jobs in each BullMQ queue the process holds, by state (waiting, active, delayed, failed, ...)',
      labelNames: ['queue', 'state'],
      async collect() {
        this.reset();
        await Promise.all(
          queues().map(async (queue) => {
            // Redis unreachable: this queue's series are absent from the scrape rather than stale.
            const counts = await queue.getJobCounts().catch(() => ({}) as Record<string, number>);
            for (const [state, count] of Object.entries(counts)) this.set({ queue: queue.name, state }, count);
          }),
        );
      },
    });
  }

  onApplicationBootstrap(): void {
    const queues = providersOfKind<Queue>(this.discovery, Queue);
    const byName = new Map(queues.map((queue) => [queue.qualifiedName, queue]));
    this.queues = [...byName.values()];
  }
}
