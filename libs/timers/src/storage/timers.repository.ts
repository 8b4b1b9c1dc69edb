import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Collection, Db, MongoServerError, ObjectId } from 'mongodb';
import { MONGO_DB } from '@bufferq/datastores';
import { TimerDocument, TimerStatus } from '../timer';
import { MicroBatcher } from './micro-batcher';

export const TIMERS_COLLECTION = 'timers';

/** A timer that may still need a delivery attempt, as the reconciler reads it. */
export interface SchedulableTimer {
  id: string;
  runAt: number;
}

/**
 * All MongoDB access for timers. Every state change is a single-document conditional update, so it is
 * safe with many api and worker replicas and needs no transactions (works unchanged on MongoDB 7).
 */
@Injectable()
export class TimersRepository implements OnModuleInit {
  private readonly timers: Collection<TimerDocument>;
  private readonly claims = new MicroBatcher((attempts: Array<{ id: ObjectId; runAt: Date }>) =>
    this.claimAttempts(attempts),
  );
  private readonly deliveries = new MicroBatcher((ids: ObjectId[]) => this.markManyDelivered(ids));

  constructor(@Inject(MONGO_DB) db: Db) {
    this.timers = db.collection<TimerDocument>(TIMERS_COLLECTION);
  }

  async onModuleInit(): Promise<void> {
    // One index per call: FerretDB 1.24 drops the connection when a multi-index createIndexes repeats
    // indexes that already exist (every process start after the first); single ones are idempotent.
    // Sparse: only timers created with an Idempotency-Key carry one (FerretDB lacks partial indexes).
    await this.timers.createIndex(
      { idempotencyKey: 1 },
      { name: 'idempotencyKey_unique', unique: true, sparse: true },
    );
    await this.timers.createIndex({ status: 1, runAt: 1 }, { name: 'status_runAt' });
    await this.timers.createIndex({ status: 1, _id: -1 }, { name: 'status_id' });
  }

  /** Inserts the timer, or returns the existing one when its idempotency key was used before. */
  async insertOnce(timer: TimerDocument): Promise<{ timer: TimerDocument; inserted: boolean }> {
    try {
      await this.timers.insertOne(timer);
      return { timer, inserted: true };
    } catch (error) {
      if (!(
        error instanceof MongoServerError &&
        error.code === 11000 &&
        timer.idempotencyKey !== undefined
      ))
        throw error;
      const existing = await this.timers.findOne({ idempotencyKey: timer.idempotencyKey });
      if (!existing) throw error;
      return { timer: existing, inserted: false };
    }
  }

  async insertMany(timers: TimerDocument[]): Promise<void> {
    await this.timers.insertMany(timers, { ordered: false });
  }

  findById(id: ObjectId): Promise<TimerDocument | null> {
    return this.timers.findOne({ _id: id });
  }

  /** Newest first; `after` is the last id of the previous page. */
  list(options: {
    status?: TimerStatus;
    after?: ObjectId;
    limit: number;
  }): Promise<TimerDocument[]> {
    const filter: Record<string, unknown> = {};
    if (options.status) filter.status = options.status;
    if (options.after) filter._id = { $lt: options.after };
    return this.timers.find(filter).sort({ _id: -1 }).limit(options.limit).toArray();
  }

  /** Cancels a pending timer; `null` when it is not pending (or unknown). */
  cancelPending(id: ObjectId): Promise<TimerDocument | null> {
    return this.timers.findOneAndUpdate(
      { _id: id, status: 'pending' },
      { $set: { status: 'cancelled', updatedAt: new Date() } },
      { returnDocument: 'after' },
    );
  }

  /** Puts a failed timer back in the schedule for an immediate attempt with a fresh attempt budget. */
  retryFailed(id: ObjectId, runAt: Date): Promise<TimerDocument | null> {
    return this.timers.findOneAndUpdate(
      { _id: id, status: 'failed' },
      { $set: { status: 'pending', runAt, attempts: 0, updatedAt: new Date() } },
      { returnDocument: 'after' },
    );
  }

  /**
   * Claims the delivery attempt scheduled for `runAt`. Matching on `runAt` makes a leftover queue job of
   * an earlier attempt a no-op, and a cancelled, delivered or failed timer is never claimed. Concurrent
   * claims are sent to MongoDB together (see `claimAttempts`).
   */
  claimAttempt(id: ObjectId, runAt: Date): Promise<TimerDocument | null> {
    return this.claims.submit({ id, runAt });
  }

  markDelivered(id: ObjectId): Promise<void> {
    return this.deliveries.submit(id);
  }

  /**
   * Claims many attempts with two statements: one update stamps the claimable ones with a fresh claim
   * token (and counts the attempt), one read returns those carrying the token.
   */
  private async claimAttempts(
    attempts: Array<{ id: ObjectId; runAt: Date }>,
  ): Promise<Array<TimerDocument | null>> {
    const claim = randomUUID();
    // One clause per distinct attempt time (timers created together share one), not one per timer.
    const idsByRunAt = new Map<number, ObjectId[]>();
    for (const attempt of attempts) {
      const ids = idsByRunAt.get(attempt.runAt.getTime()) ?? [];
      ids.push(attempt.id);
      idsByRunAt.set(attempt.runAt.getTime(), ids);
    }
    await this.timers.updateMany(
      {
        status: { $in: ['pending', 'delivering'] },
        $or: [...idsByRunAt].map(([runAt, ids]) => ({ runAt: new Date(runAt), _id: { $in: ids } })),
      },
      { $set: { status: 'delivering', claim, updatedAt: new Date() }, $inc: { attempts: 1 } },
    );
    const claimed = await this.timers
      .find({ _id: { $in: attempts.map((attempt) => attempt.id) }, claim })
      .toArray();
    const byId = new Map(claimed.map((timer) => [timer._id.toHexString(), timer]));
    return attempts.map((attempt) => byId.get(attempt.id.toHexString()) ?? null);
  }

  private async markManyDelivered(ids: ObjectId[]): Promise<void[]> {
    const now = new Date();
    await this.timers.updateMany(
      { _id: { $in: ids }, status: 'delivering' },
      { $set: { status: 'delivered', deliveredAt: now, updatedAt: now } },
    );
    return ids.map(() => undefined);
  }

  async scheduleRetry(id: ObjectId, runAt: Date, error: string): Promise<void> {
    await this.timers.updateOne(
      { _id: id, status: 'delivering' },
      { $set: { runAt, lastError: error, updatedAt: new Date() } },
    );
  }

  async markFailed(id: ObjectId, error: string): Promise<void> {
    await this.timers.updateOne(
      { _id: id, status: 'delivering' },
      { $set: { status: 'failed', lastError: error, updatedAt: new Date() } },
    );
  }

  /** Timers whose next attempt is at or before `until` and not finished, in batches. */
  async *schedulable(until: Date, batchSize: number): AsyncGenerator<SchedulableTimer[]> {
    const cursor = this.timers
      .find(
        { status: { $in: ['pending', 'delivering'] }, runAt: { $lte: until } },
        { projection: { _id: 1, runAt: 1 } },
      )
      .batchSize(batchSize);
    let batch: SchedulableTimer[] = [];
    for await (const timer of cursor) {
      batch.push({ id: timer._id.toHexString(), runAt: timer.runAt.getTime() });
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
  }
}
