import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { Collection, Db, Filter, MongoBulkWriteError, ObjectId, WriteError } from 'mongodb';
import { MONGO_DB } from '@bufferq/datastores';
import { TenantId, TIMER_STATUSES, TimerDocument, TimerStatus } from '../timer';
import { MicroBatcher } from './micro-batcher';

export const TIMERS_COLLECTION = 'timers';

/** A timer that may still need a delivery attempt, as the reconciler reads it. */
export interface SchedulableTimer {
  id: string;
  runAt: number;
  url: string;
  attempts: number;
}

/** What delivery reads of a timer whose delivery was not staged in Redis. */
export type DeliverableTimer = Pick<TimerDocument, '_id' | 'url' | 'status' | 'runAt' | 'attempts'>;

/** What `insertOnce` answers one caller: the stored timer, or the error of its own insert. */
type InsertOutcome = { timer: TimerDocument; inserted: boolean } | { error: unknown };

/** Statuses of a timer that still needs an attempt. */
const UNFINISHED: TimerStatus[] = ['pending', 'delivering'];

/**
 * The timers a tenant may see. The default tenant's have no `tenant` field (`null` matches a missing
 * field), so timers stored before tenants existed stay the default tenant's without a migration.
 */
function ownedBy(tenant: TenantId): Filter<TimerDocument> {
  return { tenant: tenant ?? null } as Filter<TimerDocument>;
}

/** Every timer, said so that the `tenant_status_id` index serves a list without a status filter. */
const anyStatus: Filter<TimerDocument> = { status: { $in: [...TIMER_STATUSES] } };

/** Timers whose status the API shows as `status` (`shownStatus`: a stored `pending` timer that is due shows `delivering`). */
function shownStatusFilter(status: TimerStatus, now: Date): Filter<TimerDocument> {
  if (status === 'pending') return { status: 'pending', runAt: { $gt: now } };
  if (status === 'delivering') return { $or: [{ status: 'delivering' }, { status: 'pending', runAt: { $lte: now } }] };
  return { status };
}

/** Indexes of earlier versions, replaced by `tenant_status_id`: their names and keys. */
const RETIRED_INDEXES = [
  { name: 'status_id', key: { status: 1, _id: -1 } },
  { name: 'tenant_id', key: { tenant: 1, _id: -1 } },
];
/** MongoDB's IndexNotFound error code (FerretDB answers the same). */
const INDEX_NOT_FOUND = 27;

@Injectable()
export class TimersRepository implements OnModuleInit {
  private readonly timers: Collection<TimerDocument>;
  private readonly deliveries = new MicroBatcher((ids: ObjectId[]) => this.recordManyDelivered(ids));
  private readonly creations = new MicroBatcher((timers: TimerDocument[]) => this.insertManyOnce(timers), 1_000, 0);

  constructor(@Inject(MONGO_DB) db: Db) {
    this.timers = db.collection<TimerDocument>(TIMERS_COLLECTION);
  }

  async onModuleInit(): Promise<void> {
    // One index per call: FerretDB 1.24 drops the connection when a multi-index createIndexes repeats
    // indexes that already exist (every process start after the first); single ones are idempotent.
    // Sparse: only timers created with an Idempotency-Key carry one (FerretDB lacks partial indexes). The
    // stored key carries its tenant (storedIdempotencyKey), so one unique index serves every tenant.
    await this.timers.createIndex({ idempotencyKey: 1 }, { name: 'idempotencyKey_unique', unique: true, sparse: true });
    await this.timers.createIndex({ status: 1, runAt: 1 }, { name: 'status_runAt' });
    // A tenant's list, newest first; without a status filter it asks for every status (`anyStatus`), which
    // MongoDB reads as one merge of a range per status, so no second tenant index is needed. Each index
    // costs every insert (on FerretDB 1.24, a JSON parse of the document per indexed field).
    await this.timers.createIndex({ tenant: 1, status: 1, _id: -1 }, { name: 'tenant_status_id' });
    await this.dropRetiredIndexes();
  }

  /**
   * Drops the indexes earlier versions created that nothing reads any more (each costs every insert). Only
   * an index with one of those names and the very keys we gave it goes, so an operator's own index of that
   * name stays; processes starting together may race to drop one, and the loser finds it gone.
   */
  private async dropRetiredIndexes(): Promise<void> {
    const existing = await this.timers.listIndexes().toArray();
    for (const retired of RETIRED_INDEXES) {
      const index = existing.find((candidate) => candidate.name === retired.name);
      if (!index || JSON.stringify(index.key) !== JSON.stringify(retired.key)) continue;
      await this.timers.dropIndex(retired.name).catch((error: unknown) => {
        if ((error as { code?: number }).code !== INDEX_NOT_FOUND) throw error;
      });
    }
  }

  /**
   * Inserts the timer, or returns the existing one when its idempotency key was used before. Resolves once
   * MongoDB acknowledged the insert. Timers created at the same time are inserted together (one statement,
   * see `insertManyOnce`): on FerretDB each statement is a transaction and its commit costs more than
   * several documents do.
   */
  async insertOnce(timer: TimerDocument): Promise<{ timer: TimerDocument; inserted: boolean }> {
    const outcome = await this.creations.submit(timer);
    if ('error' in outcome) throw outcome.error;
    return outcome;
  }

  /**
   * Inserts the timers unordered, so one refused document leaves the others inserted, and answers each on
   * its own: a duplicate Idempotency-Key (also one repeated within the batch) gets the timer stored under it,
   * any other refusal its own error. An error that is not about single documents fails them all.
   */
  private async insertManyOnce(timers: TimerDocument[]): Promise<InsertOutcome[]> {
    const refused = new Map<number, WriteError>();
    try {
      await this.timers.insertMany(timers, { ordered: false });
    } catch (error) {
      const writeErrors = error instanceof MongoBulkWriteError ? [error.writeErrors].flat() : [];
      if (!writeErrors.length) throw error;
      for (const writeError of writeErrors) refused.set(writeError.index, writeError);
    }
    return Promise.all(
      timers.map(async (timer, i): Promise<InsertOutcome> => {
        const writeError = refused.get(i);
        if (!writeError) return { timer, inserted: true };
        const error = new Error(`timer not stored: ${writeError.errmsg} (code ${writeError.code})`);
        if (writeError.code !== 11000 || timer.idempotencyKey === undefined) return { error };
        const existing = await this.timers.findOne({ idempotencyKey: timer.idempotencyKey });
        return existing ? { timer: existing, inserted: false } : { error };
      }),
    );
  }

  async insertMany(timers: TimerDocument[]): Promise<void> {
    await this.timers.insertMany(timers, { ordered: false });
  }

  /** The tenant's timer with this id; `null` when there is none (also when another tenant owns it). */
  findById(id: ObjectId, tenant: TenantId): Promise<TimerDocument | null> {
    return this.timers.findOne({ _id: id, ...ownedBy(tenant) });
  }

  /**
   * The tenant's timers, newest first; `after` is the last id of the previous page. Status as the API
   * shows it (`shownStatus`).
   */
  list(options: {
    tenant: TenantId;
    status?: TimerStatus;
    after?: ObjectId;
    limit: number;
    now?: Date;
  }): Promise<TimerDocument[]> {
    const filter: Record<string, unknown> = {
      ...ownedBy(options.tenant),
      ...(options.status ? shownStatusFilter(options.status, options.now ?? new Date()) : anyStatus),
    };
    if (options.after) filter._id = { $lt: options.after };
    return this.timers.find(filter).sort({ _id: -1 }).limit(options.limit).toArray();
  }

  /** Timers per status as the API shows it, across every tenant: an operator's view. */
  async countByStatus(now = new Date()): Promise<Record<TimerStatus, number>> {
    const counts = await Promise.all(
      TIMER_STATUSES.map((status) => this.timers.countDocuments(shownStatusFilter(status, now))),
    );
    return Object.fromEntries(TIMER_STATUSES.map((status, i) => [status, counts[i]])) as Record<TimerStatus, number>;
  }

  /** Failed timers of every tenant, oldest first (id and tenant), for an operator's retry. */
  failed(limit: number): Promise<Array<Pick<TimerDocument, '_id' | 'tenant'>>> {
    return this.timers
      .find({ status: 'failed' }, { projection: { _id: 1, tenant: 1 } })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
  }

  /** Cancels the tenant's timer if it is pending and not yet due at `now`; `null` otherwise (or unknown). */
  cancelPending(id: ObjectId, tenant: TenantId, now: Date): Promise<TimerDocument | null> {
    return this.timers.findOneAndUpdate(
      { _id: id, ...ownedBy(tenant), status: 'pending', runAt: { $gt: now } },
      { $set: { status: 'cancelled', updatedAt: new Date() } },
      { returnDocument: 'after' },
    );
  }

  /** Puts the tenant's failed timer back in the schedule for an attempt now with a fresh attempt budget. */
  retryFailed(id: ObjectId, tenant: TenantId, runAt: Date): Promise<TimerDocument | null> {
    return this.timers.findOneAndUpdate(
      { _id: id, ...ownedBy(tenant), status: 'failed' },
      { $set: { status: 'pending', runAt, attempts: 0, updatedAt: new Date() } },
      { returnDocument: 'after' },
    );
  }

  /**
   * Reads what delivery needs of timers whose delivery was not staged in Redis. One statement per batch
   * (on FerretDB 1.24 a `$in` scans the collection: about a second per 20,000 timers; hence the staging).
   */
  findForDelivery(ids: ObjectId[]): Promise<DeliverableTimer[]> {
    return this.timers
      .find({ _id: { $in: ids } }, { projection: { _id: 1, url: 1, status: 1, runAt: 1, attempts: 1 } })
      .toArray();
  }

  /**
   * Records a delivered attempt. Calls arriving together are written as one statement (see
   * `recordManyDelivered`); a timer already finished (a duplicate attempt) is left as it is.
   */
  recordDelivered(id: ObjectId): Promise<void> {
    return this.deliveries.submit(id);
  }

  private async recordManyDelivered(ids: ObjectId[]): Promise<void[]> {
    const now = new Date();
    await this.timers.updateMany(
      { _id: { $in: ids }, status: { $in: UNFINISHED } },
      { $set: { status: 'delivered', deliveredAt: now, updatedAt: now }, $inc: { attempts: 1 } },
    );
    return ids.map(() => undefined);
  }

  /** Records a failed attempt that will be retried at `runAt`; the timer shows `delivering` meanwhile. */
  async recordRetry(id: ObjectId, runAt: Date, error: string): Promise<void> {
    await this.timers.updateOne(
      { _id: id, status: { $in: UNFINISHED } },
      {
        $set: { status: 'delivering', runAt, lastError: error, updatedAt: new Date() },
        $inc: { attempts: 1 },
      },
    );
  }

  /** Records a failed last attempt: the timer becomes `failed` (a dead letter, retryable by API). */
  async recordFailed(id: ObjectId, error: string): Promise<void> {
    await this.timers.updateOne(
      { _id: id, status: { $in: UNFINISHED } },
      {
        $set: { status: 'failed', lastError: error, updatedAt: new Date() },
        $inc: { attempts: 1 },
      },
    );
  }

  /** Timers whose next attempt is at or before `until` and not finished, in batches. */
  async *schedulable(until: Date, batchSize: number): AsyncGenerator<SchedulableTimer[]> {
    const cursor = this.timers
      .find(
        { status: { $in: UNFINISHED }, runAt: { $lte: until } },
        { projection: { _id: 1, runAt: 1, url: 1, attempts: 1 } },
      )
      .batchSize(batchSize);
    let batch: SchedulableTimer[] = [];
    for await (const timer of cursor) {
      batch.push({
        id: timer._id.toHexString(),
        runAt: timer.runAt.getTime(),
        url: timer.url,
        attempts: timer.attempts,
      });
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
  }
}
