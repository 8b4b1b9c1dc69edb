import { Collection, Db } from 'mongodb';
import { BuildCancelledError } from '../consolidation/build-cancelled-error';
import { bucketCountFor, bucketId, bucketOf, groupByBucket } from './buckets';
import type { LedgerRow } from '../consolidation/user-ledger';
import type {
  BuildCounts,
  BuildInputs,
  BuildProgress,
  Consolidation,
  InputProblem,
  LabelPayout,
  RevenueSummary,
} from '../consolidation/consolidation';
import type { Origin } from '../consolidation/money';

export type BuildStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface BuildDocument {
  _id: string;
  status: BuildStatus;
  inputs: BuildInputs;
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  progress?: BuildProgress;
  cancelRequested?: boolean;
  error?: string;
  result?: {
    revenue: RevenueSummary;
    labels: LabelPayout[];
    unallocatedCents: number;
    counts: BuildCounts;
    problems: InputProblem[];
    problemCount: number;
    streamsInput: { sizeBytes: number | null; modifiedMs: number | null };
    persistedUsers: number;
    userBuckets: number;
    trackBuckets: number;
  };
}

/** Up to ENTRIES_PER_BUCKET users of one build, in columns (`ids[i]` has `seconds[i]`, …). */
export interface UserBucket {
  ids: string[];
  seconds: number[];
  listed: boolean[];
  productType: Array<string | null>;
  feeCents: Array<number | null>;
  origin: Array<Origin | null>;
}

export interface TrackBucket {
  ids: string[];
  names: string[];
  labels: string[];
}

/**
 * One stored bucket: `_id` `<buildId>/<bucket>` (one build's buckets sit in one contiguous `_id` range)
 * and the columns as one JSON string. A single string field keeps a collection scan cheap on FerretDB
 * (measured: a late `_id` lookup over 4,000 buckets 60 ms as a string, 23 s as BSON arrays).
 */
export interface BucketDocument {
  _id: string;
  entries: number;
  columns: string;
}

export interface StoredTrack {
  trackName: string;
  label: string;
}

/** Bucket documents per insertMany (~256 entries each). */
const BATCH = 40;

/** Everything the royalties capability keeps in MongoDB: builds, and each build's users and tracks. */
export class RoyaltiesRepository {
  readonly builds: Collection<BuildDocument>;
  readonly users: Collection<BucketDocument>;
  readonly tracks: Collection<BucketDocument>;
  readonly cancels: Collection<{ _id: string; requestedAt: Date }>;

  constructor(db: Db) {
    this.cancels = db.collection<{ _id: string; requestedAt: Date }>('royalties_cancel_requests');
    this.builds = db.collection<BuildDocument>('royalties_builds');
    this.users = db.collection<BucketDocument>('royalties_user_buckets');
    this.tracks = db.collection<BucketDocument>('royalties_track_buckets');
  }

  async createBuild(id: string, inputs: BuildInputs): Promise<void> {
    await this.builds.insertOne({ _id: id, status: 'queued', inputs, createdAt: new Date() });
  }

  findBuild(id: string): Promise<BuildDocument | null> {
    return this.builds.findOne({ _id: id });
  }

  /** The newest build that finished successfully: the one every report endpoint reads by default. */
  async latestSucceeded(): Promise<BuildDocument | null> {
    const [build] = await this.builds.find({ status: 'succeeded' }).sort({ finishedAt: -1 }).limit(1).toArray();
    return build ?? null;
  }

  async markRunning(id: string): Promise<void> {
    await this.builds.updateOne(
      { _id: id },
      { $set: { status: 'running', startedAt: new Date() }, $unset: { error: '' } },
    );
  }

  async saveProgress(id: string, progress: BuildProgress): Promise<void> {
    await this.builds.updateOne({ _id: id }, { $set: { progress } });
  }

  /**
   * Records a cancel request the running build checks between chunks; false when the build already
   * finished. The request is its own document, not a field of the build: FerretDB applies an update as
   * read-modify-write of the whole document, so the worker's progress writes would erase a flag there.
   */
  async requestCancel(id: string): Promise<boolean> {
    const build = await this.builds.findOne({ _id: id }, { projection: { status: 1 } });
    if (!build || (build.status !== 'queued' && build.status !== 'running')) return false;
    await this.cancels.updateOne({ _id: id }, { $set: { requestedAt: new Date() } }, { upsert: true });
    return true;
  }

  async isCancelRequested(id: string): Promise<boolean> {
    return (await this.cancels.findOne({ _id: id })) !== null;
  }

  /** Back to `queued` after an unexpected error the queue will retry; the error stays visible meanwhile. */
  async markRetrying(id: string, error: string): Promise<void> {
    await this.builds.updateOne(
      { _id: id },
      { $set: { status: 'queued', error: `attempt failed, retrying: ${error}` } },
    );
  }

  async markFinished(id: string, status: 'failed' | 'cancelled', error?: string): Promise<void> {
    await this.deleteBuildData(id);
    await this.builds.updateOne(
      { _id: id },
      {
        $set: {
          status,
          finishedAt: new Date(),
          ...(error ? { error } : {}),
          ...(status === 'cancelled' ? { cancelRequested: true } : {}),
        },
      },
    );
    await this.cancels.deleteOne({ _id: id });
  }

  /**
   * Writes one build's users and tracks, then flips the build to succeeded. Readers only look at
   * succeeded builds, so they never see a half-written one; a rerun first clears what a crash left.
   * Throws BuildCancelledError when a cancel request is there just before that flip.
   */
  async saveConsolidation(
    id: string,
    consolidation: Consolidation,
    onBatch?: (written: number) => Promise<void>,
  ): Promise<void> {
    await this.deleteBuildData(id);
    const { ledger, tracks, ...summary } = consolidation;
    const userIds = ledger.ids();
    const userBuckets = bucketCountFor(userIds.length);
    let written = 0;
    await this.writeBuckets(
      id,
      userIds,
      userBuckets,
      this.users,
      (members): UserBucket => {
        const rows = members.map((i) => ledger.row(i, userIds[i]));
        written += rows.length;
        return {
          ids: rows.map((row) => row.userId),
          seconds: rows.map((row) => row.seconds),
          listed: rows.map((row) => row.listed),
          productType: rows.map((row) => row.productType),
          feeCents: rows.map((row) => row.feeCents),
          origin: rows.map((row) => row.origin),
        };
      },
      () => onBatch?.(written),
    );
    const trackIds = tracks.map((track) => track.trackId);
    const trackBuckets = bucketCountFor(trackIds.length);
    await this.writeBuckets(id, trackIds, trackBuckets, this.tracks, (members): TrackBucket => ({
      ids: members.map((i) => tracks[i].trackId),
      names: members.map((i) => tracks[i].trackName),
      labels: members.map((i) => tracks[i].label),
    }));
    // Last look before the flip; a request landing between this read and the flip is too late (the status says so).
    if (await this.isCancelRequested(id)) throw new BuildCancelledError();
    await this.builds.updateOne(
      { _id: id },
      {
        $set: {
          status: 'succeeded',
          finishedAt: new Date(),
          result: { ...summary, persistedUsers: ledger.size, userBuckets, trackBuckets },
        },
      },
    );
    await this.cancels.deleteOne({ _id: id });
  }

  private async writeBuckets(
    buildId: string,
    keys: string[],
    bucketCount: number,
    collection: Collection<BucketDocument>,
    bucketColumns: (members: number[]) => { ids: string[] },
    afterBatch?: () => Promise<void> | undefined,
  ): Promise<void> {
    const { order, starts } = groupByBucket(keys, bucketCount);
    let batch: BucketDocument[] = [];
    for (let b = 0; b < bucketCount; b++) {
      const columns = bucketColumns(Array.from(order.subarray(starts[b], starts[b + 1])));
      batch.push({ _id: bucketId(buildId, b), entries: columns.ids.length, columns: JSON.stringify(columns) });
      if (batch.length === BATCH || b === bucketCount - 1) {
        await collection.insertMany(batch, { ordered: false });
        batch = [];
        await afterBatch?.();
      }
    }
  }

  /** Drops the users and tracks of every finished build except `keepId` (results of one build are kept). */
  async purgeOtherBuilds(keepId: string): Promise<void> {
    const others = await this.builds
      .find({ _id: { $ne: keepId }, status: 'succeeded', dataPurged: { $ne: true } } as never)
      .project({ _id: 1 })
      .toArray();
    for (const { _id } of others) {
      await this.deleteBuildData(_id as string);
      await this.builds.updateOne({ _id: _id as string }, { $set: { dataPurged: true } as never });
    }
  }

  async findUser(build: BuildDocument, userId: string): Promise<LedgerRow | null> {
    return (await this.findUsers(build, [userId])).get(userId) ?? null;
  }

  /** Users of a build in storage order (bucket by bucket), after `afterUserId` (exclusive). */
  async listUsers(
    build: BuildDocument,
    afterUserId: string | undefined,
    limit: number,
  ): Promise<{ rows: LedgerRow[]; more: boolean }> {
    const buckets = build.result?.userBuckets ?? 0;
    let bucket = 0;
    let position = 0;
    if (afterUserId !== undefined) {
      bucket = bucketOf(afterUserId, buckets);
      const doc = await this.userBucket(build._id, bucket);
      position = (doc?.ids.indexOf(afterUserId) ?? -1) + 1;
    }
    const rows: LedgerRow[] = [];
    for (; bucket < buckets; bucket++, position = 0) {
      const doc = await this.userBucket(build._id, bucket);
      const ids = doc?.ids ?? [];
      for (; position < ids.length; position++) {
        if (rows.length === limit) return { rows, more: true };
        rows.push(userRow(doc!, position));
      }
    }
    return { rows, more: false };
  }

  async findUsers(build: BuildDocument, userIds: string[]): Promise<Map<string, LedgerRow>> {
    const buckets = build.result?.userBuckets ?? 0;
    const found = new Map<string, LedgerRow>();
    if (!buckets || !userIds.length) return found;
    const wanted = [...new Set(userIds.map((userId) => bucketId(build._id, bucketOf(userId, buckets))))];
    const requested = new Set(userIds);
    for (const stored of await this.users.find({ _id: { $in: wanted } }).toArray()) {
      const doc = JSON.parse(stored.columns) as UserBucket;
      doc.ids.forEach((userId, i) => requested.has(userId) && found.set(userId, userRow(doc, i)));
    }
    return found;
  }

  async findTracks(build: BuildDocument, trackIds: string[]): Promise<Map<string, StoredTrack>> {
    const buckets = build.result?.trackBuckets ?? 0;
    const found = new Map<string, StoredTrack>();
    if (!buckets || !trackIds.length) return found;
    const wanted = [...new Set(trackIds.map((trackId) => bucketId(build._id, bucketOf(trackId, buckets))))];
    const requested = new Set(trackIds);
    for (const stored of await this.tracks.find({ _id: { $in: wanted } }).toArray()) {
      const doc = JSON.parse(stored.columns) as TrackBucket;
      doc.ids.forEach(
        (trackId, i) => requested.has(trackId) && found.set(trackId, { trackName: doc.names[i], label: doc.labels[i] }),
      );
    }
    return found;
  }

  private async userBucket(buildId: string, bucket: number): Promise<UserBucket | null> {
    const stored = await this.users.findOne({ _id: bucketId(buildId, bucket) });
    return stored ? (JSON.parse(stored.columns) as UserBucket) : null;
  }

  private async deleteBuildData(id: string): Promise<void> {
    // '0' follows '/' in code-point order: this range is exactly the ids starting with `<id>/`.
    const range = { _id: { $gt: `${id}/`, $lt: `${id}0` } };
    await this.users.deleteMany(range);
    await this.tracks.deleteMany(range);
  }
}

function userRow(doc: UserBucket, i: number): LedgerRow {
  return {
    userId: doc.ids[i],
    seconds: doc.seconds[i],
    listed: doc.listed[i],
    productType: doc.productType[i],
    feeCents: doc.feeCents[i],
    origin: doc.origin[i],
  };
}
