// What a consolidation takes (inputs, options) and gives (per-user ledger, label payouts, revenue, counts, problems).
import type { InputPolicy } from '../inputs/input-policy';
import type { TrackRecord } from '../inputs/track-metadata';
import type { Origin } from './money';
import type { StreamLineCounts } from './stream-tally';
import type { UserLedger } from './user-ledger';

export interface BuildInputs {
  usersCsv: string;
  streamsCsv: string;
  tracks: string;
}

export type BuildPhase = 'tracks' | 'users' | 'streams' | 'persisting';

export interface BuildProgress {
  phase: BuildPhase;
  /** Lines read so far over both CSV files. */
  rowsRead: number;
  /** Bytes read of the file of the current phase, and its size when known. */
  bytesRead: number;
  bytesTotal: number | null;
  percent: number | null;
}

export interface InputProblem {
  source: 'users' | 'streams' | 'tracks';
  /** 1-based line of a CSV file, or the zero-based array element of the track metadata (-1: the recovered first track). */
  line?: number;
  element?: number;
  reason: string;
}

export interface BuildCounts {
  users: { lines: number; listed: number; bad: number };
  streams: StreamLineCounts & {
    /** Streams of users missing from the users file: their seconds still count for the label. */
    unknownUserStreams: number;
    unknownUsers: number;
    unknownUserSample: string[];
  };
  tracks: { count: number; bad: number; recoveredFromKeys: boolean };
}

export interface OriginRevenue {
  users: number;
  feesCents: number;
  /** Exact revenue to 1/10,000 of the currency, as decimal text. */
  revenueExact: string;
}

export interface RevenueSummary {
  totalExact: string;
  /** The exact total rounded half up to cents: what the label payouts add up to. */
  totalCents: number;
  byOrigin: Record<Origin, OriginRevenue>;
}

export interface LabelPayout {
  label: string;
  seconds: number;
  payoutCents: number;
}

export interface Consolidation {
  ledger: UserLedger;
  tracks: TrackRecord[];
  labels: LabelPayout[];
  revenue: RevenueSummary;
  /** Revenue not paid to any label: all of it when no stream hit a known track, else 0. */
  unallocatedCents: number;
  counts: BuildCounts;
  problems: InputProblem[];
  problemCount: number;
  /** What the streams file looked like when read, so later page reads can tell it changed. */
  streamsInput: { sizeBytes: number | null; modifiedMs: number | null };
}

export interface ConsolidationOptions {
  /** Fail when more than this share of a file's data lines (or track elements) is malformed. */
  maxBadLineShare: number;
  /** How many problems are kept with their line numbers (all are counted). */
  maxReportedProblems?: number;
  /** Hooks run between chunks, at most once per `checkIntervalMs`. */
  onProgress?: (progress: BuildProgress) => void | Promise<void>;
  isCancelled?: () => boolean | Promise<boolean>;
  checkIntervalMs?: number;
  /**
   * Threads that read the streams file, this one included, each a byte range of whole lines (default 1:
   * only this thread). More than one only for local files of at least twice `minBytesPerThread`.
   */
  streamThreads?: number;
  /** Smallest range worth a thread (default 16 MiB): a thread costs a start-up, and the shared index of the users file is built for the threads. */
  minBytesPerThread?: number;
  /** Where the inputs may come from and how long a line may be (default: no local paths, public URLs only). */
  inputPolicy?: InputPolicy;
}
