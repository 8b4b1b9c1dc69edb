import { Collection, Db } from 'mongodb';
import { BuildCancelledError } from './build-errors';
import type { BuildCounts, BuildInputs, BuildProgress, Consolidation, InputProblem, LabelPayout, RevenueSummary } from './consolidation';
import type { Origin } from './money';

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
  };
}

export interface UserTotalDocument {
  /** `<buildId>/<userId>`: one build's users sit in one contiguous `_id` range, no secondary index needed. */
  _id: string;
  seconds: number;
  listed: boolean;
  productType: string | null;
  feeCents: number | null;
  origin: Origin | null;
}

export interface TrackDocument {
  _id: string;
  trackName: string;
  label: string;
}

const BATCH = 5_000;

/** Everything the royalties capability keeps in MongoDB: builds, and each build's users and tracks. */
export class RoyaltiesRepository {
  readonly builds: Collection<BuildDocument>;
  readonly users: Collection<UserTotalDocument>;
  readonly tracks: Collection<TrackDocument>;

  constructor(db: Db) {
    this.builds = db.collection<BuildDocument>('royalties_builds');
    this.users = db.collection<UserTotalDocument>('royalties_user_totals');
    this.tracks = db.collection<TrackDocument>('royalties_tracks');
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
    await this.builds.updateOne({ _id: id }, { $set: { status: 'running', startedAt: new Date() }, $unset: { error: '' } });
  }

  async saveProgress(id: string, progress: BuildProgress): Promise<void> {
    await this.builds.updateOne({ _id: id }, { $set: { progress } });
  }

  /** Sets the flag the running build checks between chunks; false when the build already finished. */
  async requestCancel(id: string): Promise<boolean> {
    const result = await this.builds.updateOne({ _id: id, status: { $in: ['queued', 'running'] } }, { $set: { cancelRequested: true } });
    return result.matchedCount === 1;
  }

  async isCancelRequested(id: string): Promise<boolean> {
    const build = await this.builds.findOne({ _id: id }, { projection: { cancelRequested: 1 } });
    return build?.cancelRequested === true;
  }

  /** Back to `queued` after an unexpected error the queue will retry; the error stays visible meanwhile. */
  async markRetrying(id: string, error: string): Promise<void> {
    await this.builds.updateOne({ _id: id }, { $set: { status: 'queued', error: `attempt failed, retrying: ${error}` } });
  }

  async markFinished(id: string, status: 'failed' | 'cancelled', error?: string): Promise<void> {
    await this.deleteBuildData(id);
    await this.builds.updateOne({ _id: id }, { $set: { status, finishedAt: new Date(), ...(error ? { error } : {}) } });
  }

  /**
   * Writes one build's users and tracks, then flips the build to succeeded. Readers only look at
   * succeeded builds, so they never see a half-written one; a rerun first clears what a crash left.
   * Throws BuildCancelledError when a cancel request reached the build before that flip.
   */
  async saveConsolidation(id: string, consolidation: Consolidation, onBatch?: (written: number) => Promise<void>): Promise<void> {
    await this.deleteBuildData(id);
    let batch: UserTotalDocument[] = [];
    let written = 0;
    for (const user of consolidation.ledger.entries()) {
      batch.push({ _id: `${id}/${user.userId}`, seconds: user.seconds, listed: user.listed, productType: user.productType, feeCents: user.feeCents, origin: user.origin });
      if (batch.length === BATCH) {
        await this.users.insertMany(batch, { ordered: false });
        written += batch.length;
        batch = [];
        await onBatch?.(written);
      }
    }
    if (batch.length) {
      await this.users.insertMany(batch, { ordered: false });
      await onBatch?.(written + batch.length);
    }
    for (let i = 0; i < consolidation.tracks.length; i += BATCH) {
      const tracks = consolidation.tracks.slice(i, i + BATCH).map((track) => ({ _id: `${id}/${track.trackId}`, trackName: track.trackName, label: track.label }));
      await this.tracks.insertMany(tracks, { ordered: false });
    }
    const { ledger, tracks, ...summary } = consolidation;
    void tracks;
    // One conditional update on one document: a cancel request that arrived after the last check wins.
    const flipped = await this.builds.updateOne(
      { _id: id, cancelRequested: { $ne: true } },
      { $set: { status: 'succeeded', finishedAt: new Date(), result: { ...summary, persistedUsers: ledger.size } } },
    );
    if (flipped.matchedCount === 0) throw new BuildCancelledError();
  }

  /** Drops the users and tracks of every finished build except `keepId` (results of one build are kept). */
  async purgeOtherBuilds(keepId: string): Promise<void> {
    const others = await this.builds.find({ _id: { $ne: keepId }, status: 'succeeded', dataPurged: { $ne: true } } as never).project({ _id: 1 }).toArray();
    for (const { _id } of others) {
      await this.deleteBuildData(_id as string);
      await this.builds.updateOne({ _id: _id as string }, { $set: { dataPurged: true } as never });
    }
  }

  findUser(buildId: string, userId: string): Promise<UserTotalDocument | null> {
    return this.users.findOne({ _id: `${buildId}/${userId}` });
  }

  /** Users of a build in id order, after `afterUserId` (exclusive). */
  async listUsers(buildId: string, afterUserId: string | undefined, limit: number): Promise<Array<UserTotalDocument & { userId: string }>> {
    const prefix = `${buildId}/`;
    const docs = await this.users
      .find({ _id: { $gt: afterUserId === undefined ? prefix : `${prefix}${afterUserId}`, $lt: `${buildId}0` } })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map((doc) => ({ ...doc, userId: doc._id.slice(prefix.length) }));
  }

  async findUsers(buildId: string, userIds: string[]): Promise<Map<string, UserTotalDocument>> {
    const docs = await this.users.find({ _id: { $in: userIds.map((userId) => `${buildId}/${userId}`) } }).toArray();
    return new Map(docs.map((doc) => [doc._id.slice(buildId.length + 1), doc]));
  }

  async findTracks(buildId: string, trackIds: string[]): Promise<Map<string, TrackDocument>> {
    const docs = await this.tracks.find({ _id: { $in: trackIds.map((trackId) => `${buildId}/${trackId}`) } }).toArray();
    return new Map(docs.map((doc) => [doc._id.slice(buildId.length + 1), doc]));
  }

  private async deleteBuildData(id: string): Promise<void> {
    // '0' follows '/' in code-point order: this range is exactly the ids starting with `<id>/`.
    const range = { _id: { $gt: `${id}/`, $lt: `${id}0` } };
    await this.users.deleteMany(range);
    await this.tracks.deleteMany(range);
  }
}
