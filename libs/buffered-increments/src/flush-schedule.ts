import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { Queue } from 'bullmq';
import { FLUSH_JOB, FLUSH_JOB_RETENTION, FLUSH_QUEUE } from './buffered-increments.constants';
import type { BufferedCollection } from './buffered-increments.options';
import { bufferKeyOf } from './buffer-identity';

export const FLUSH_SCHEDULE_COLLECTIONS = Symbol('FLUSH_SCHEDULE_COLLECTIONS');

/** The stable scheduler id of a buffer (its collection, or its namespace): every worker replica upserts the same one. */
export function flushSchedulerId(collectionOrNamespace: string): string {
  return `flush-${collectionOrNamespace}`;
}

/**
 * Registers one BullMQ job scheduler per buffered collection. Upserting under a stable id is idempotent,
 * so however many worker replicas boot, there is one schedule and one `flush` job per period in total.
 */
@Injectable()
export class FlushSchedule implements OnApplicationBootstrap {
  constructor(
    @InjectQueue(FLUSH_QUEUE) private readonly queue: Queue,
    @Inject(FLUSH_SCHEDULE_COLLECTIONS) private readonly collections: BufferedCollection[],
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Across all replicas, one flush runs at a time: flushes of one collection would only queue on
    // its Redis lock anyway, and one at a time keeps MongoDB load flat.
    await this.queue.setGlobalConcurrency(1);
    for (const feature of this.collections) {
      const buffer = bufferKeyOf(feature);
      await this.queue.upsertJobScheduler(
        flushSchedulerId(buffer),
        { every: feature.flushIntervalMs },
        { name: FLUSH_JOB, data: { collection: feature.collection, ...(buffer !== feature.collection ? { buffer } : {}) }, opts: { ...FLUSH_JOB_RETENTION, attempts: 3, backoff: { type: 'exponential', delay: 500 } } },
      );
    }
  }
}
