import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { Queue } from 'bullmq';
import { FLUSH_JOB, FLUSH_JOB_RETENTION, FLUSH_QUEUE } from './buffered-increments.constants';
import type { ResolvedCollection } from './buffered-increments.options';
import { bufferKeyOf } from './buffer-identity';

export const FLUSH_SCHEDULE_COLLECTIONS = Symbol('FLUSH_SCHEDULE_COLLECTIONS');

/**
 * The stable scheduler id of a buffer (its collection, or its namespace) and shard: every worker
 * replica upserts the same one. Shard 0 keeps the unsharded id, so adding shards keeps its schedule.
 */
export function flushSchedulerId(collectionOrNamespace: string, shard = 0): string {
  return shard === 0 ? `flush-${collectionOrNamespace}` : `flush-${collectionOrNamespace}:${shard}`;
}

/** Flushes that may run at once across all replicas: one per shard of the most sharded buffer. */
export function flushConcurrency(collections: ResolvedCollection[]): number {
  return Math.max(1, ...collections.map((feature) => feature.options.shards ?? 1));
}

/**
 * Registers one BullMQ job scheduler per buffered collection. Upserting under a stable id is idempotent,
 * so however many worker replicas boot, there is one schedule and one `flush` job per period in total.
 */
@Injectable()
export class FlushSchedule implements OnApplicationBootstrap {
  constructor(
    @InjectQueue(FLUSH_QUEUE) private readonly queue: Queue,
    @Inject(FLUSH_SCHEDULE_COLLECTIONS) private readonly collections: ResolvedCollection[],
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Across all replicas, as many flushes run at once as the most sharded buffer has shards (one when
    // unsharded): a shard's flushes would only queue on its Redis lock anyway, and few at a time keep
    // MongoDB load flat.
    await this.queue.setGlobalConcurrency(flushConcurrency(this.collections));
    for (const feature of this.collections) {
      const buffer = bufferKeyOf(feature);
      const shards = feature.options.shards ?? 1;
      for (let shard = 0; shard < shards; shard++) {
        const data = {
          collection: feature.collection,
          ...(buffer !== feature.collection ? { buffer } : {}),
          ...(shards > 1 ? { shard } : {}),
        };
        await this.queue.upsertJobScheduler(
          flushSchedulerId(buffer, shard),
          { every: feature.flushIntervalMs },
          {
            name: FLUSH_JOB,
            data,
            opts: { ...FLUSH_JOB_RETENTION, attempts: 3, backoff: { type: 'exponential', delay: 500 } },
          },
        );
      }
    }
  }
}
