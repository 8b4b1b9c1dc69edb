import { detachedCopy, isBlankLine, readCsvLines } from '../inputs/csv-lines';
import type { SharedUserIndex } from './shared-user-index';
import { readStreamFields, StreamLine } from './stream-line';

export const SAMPLE_SIZE = 20;

/** What a tally needs to know besides the lines: track -> label, and how many problems to keep. */
export interface TallyContext {
  trackIds: string[];
  /** Label index of each track of `trackIds`. */
  trackLabels: Int32Array;
  labelCount: number;
  maxReportedProblems: number;
  /** Longest line allowed, in bytes (ROYALTIES_MAX_LINE_BYTES). */
  maxLineBytes: number;
}

/** What the streams file's lines came to; a build reports them (BuildCounts.streams) and a tally sums them. */
export interface StreamLineCounts {
  lines: number;
  valid: number;
  bad: number;
  blank: number;
  seconds: number;
  /** Streams whose track is not in the metadata: not in any label's seconds, so not paid out. */
  unknownTrackStreams: number;
  unknownTrackSeconds: number;
  unknownTrackSample: string[];
}

/**
 * The sums over some stream lines (a whole file or one byte range of it): per user, per label, and the
 * counts. Plain data that crosses a thread boundary; user ids in first-appearance order, so merging the
 * tallies of consecutive ranges in file order gives the same result as one pass over the file.
 */
export interface StreamTallyResult extends StreamLineCounts {
  /** Physical lines read, blank ones and a header included: the next range's lines are numbered after these. */
  physicalLines: number;
  /**
   * Per-user sums of a range's own index: entries 0 to `listedUsers - 1` are the ledger's positions (the
   * users file's users), the others are the users of `unlistedIds`, in order. Empty for a tally into the ledger.
   */
  listedUsers: number;
  unlistedIds: string[];
  userSeconds: Float64Array;
  userStreams: Uint32Array;
  labelSeconds: Float64Array;
  /** Line numbers counted from the first line of this tally's input (1-based). */
  problems: Array<{ line: number; reason: string }>;
  problemCount: number;
}

/** Where a tally adds seconds and stream counts per user: the build's ledger, or a range's own index. */
export interface TallyUsers {
  indexOf(userId: string): number | undefined;
  /** Index of a user not seen before (the id is copied). */
  addUnlisted(userId: string): number;
  readonly seconds: Float64Array;
  readonly streams: Uint32Array;
}

/**
 * The users one range of the streams file names, for a worker thread. Users of the users file are found
 * in the shared index and summed at their ledger position (0 to `listed.size - 1`); only ids missing from
 * it get their own entry, after those, in first-appearance order. Without an index every id is its own.
 */
export class RangeUsers implements TallyUsers {
  private readonly unlistedIndex = new Map<string, number>();
  /** Ids missing from the shared index, in first-appearance order: entry `listedCount + k` is `unlistedIds[k]`. */
  readonly unlistedIds: string[] = [];
  readonly listedCount: number;
  seconds: Float64Array;
  streams: Uint32Array;

  constructor(private readonly listed?: SharedUserIndex) {
    this.listedCount = listed?.size ?? 0;
    this.seconds = new Float64Array(this.listedCount + 1024);
    this.streams = new Uint32Array(this.listedCount + 1024);
  }

  get size(): number {
    return this.listedCount + this.unlistedIds.length;
  }

  indexOf(userId: string): number | undefined {
    return this.listed?.positionOf(userId) ?? this.unlistedIndex.get(userId);
  }

  addUnlisted(userId: string): number {
    const i = this.size;
    if (i === this.seconds.length) {
      const seconds = new Float64Array(this.listedCount + (i - this.listedCount) * 2);
      seconds.set(this.seconds);
      this.seconds = seconds;
      const streams = new Uint32Array(seconds.length);
      streams.set(this.streams);
      this.streams = streams;
    }
    // Kept for the whole tally: a copy, so it does not keep its input chunk alive.
    const id = detachedCopy(userId);
    this.unlistedIds.push(id);
    this.unlistedIndex.set(id, i);
    return i;
  }
}

/** Accumulates stream lines. The per-line loop allocates nothing for a well-formed line but its fields. */
export class StreamTally {
  private readonly trackLabel = new Map<string, number>();
  private readonly labelSeconds: Float64Array;
  private readonly line: StreamLine = { date: '', userId: '', region: '', trackId: '', seconds: 0 };
  private readonly counts = {
    lines: 0,
    valid: 0,
    bad: 0,
    blank: 0,
    seconds: 0,
    unknownTrackStreams: 0,
    unknownTrackSeconds: 0,
  };
  private readonly unknownTrackSample: string[] = [];
  private readonly problems: Array<{ line: number; reason: string }> = [];
  private problemCount = 0;
  private physicalLines = 0;

  constructor(
    private readonly context: TallyContext,
    private readonly users: TallyUsers = new RangeUsers(),
  ) {
    context.trackIds.forEach((trackId, i) => this.trackLabel.set(trackId, context.trackLabels[i]));
    this.labelSeconds = new Float64Array(context.labelCount);
  }

  /** Adds consecutive physical lines; the first `skip` of them (a header) are only counted. */
  addRows(rows: string[][], skip = 0): void {
    const firstLine = this.physicalLines + 1;
    this.physicalLines += rows.length;
    const line = this.line;
    const counts = this.counts;
    for (let r = skip; r < rows.length; r++) {
      const fields = rows[r];
      if (isBlankLine(fields)) {
        counts.blank++;
        continue;
      }
      counts.lines++;
      const reason = readStreamFields(fields, line);
      if (reason !== null) {
        counts.bad++;
        this.problemCount++;
        if (this.problems.length < this.context.maxReportedProblems)
          this.problems.push({ line: firstLine + r, reason });
        continue;
      }
      const seconds = line.seconds;
      counts.valid++;
      counts.seconds += seconds;
      const users = this.users;
      let user = users.indexOf(line.userId);
      if (user === undefined) user = users.addUnlisted(line.userId);
      users.seconds[user] += seconds;
      users.streams[user]++;
      const label = this.trackLabel.get(line.trackId);
      if (label === undefined) {
        counts.unknownTrackStreams++;
        counts.unknownTrackSeconds += seconds;
        const sample = this.unknownTrackSample;
        if (sample.length < SAMPLE_SIZE && !sample.includes(line.trackId)) sample.push(detachedCopy(line.trackId));
      } else {
        this.labelSeconds[label] += seconds;
      }
    }
  }

  /** The sums; per-user ones only for a range's own index (a ledger already holds them). */
  result(): StreamTallyResult {
    const own = this.users instanceof RangeUsers ? this.users : null;
    const users = own?.size ?? 0;
    return {
      physicalLines: this.physicalLines,
      ...this.counts,
      unknownTrackSample: this.unknownTrackSample,
      listedUsers: own?.listedCount ?? 0,
      unlistedIds: own?.unlistedIds ?? [],
      // subarray, not slice: a view of the same buffer, transferred to the merging thread without a copy.
      userSeconds: own ? own.seconds.subarray(0, users) : new Float64Array(0),
      userStreams: own ? own.streams.subarray(0, users) : new Uint32Array(0),
      labelSeconds: this.labelSeconds,
      problems: this.problems,
      problemCount: this.problemCount,
    };
  }
}

/**
 * Tallies a stream of streams-CSV bytes. `skipLines`: leading lines only counted (the header, in the
 * range that starts the file). `onChunk` runs after every chunk with its bytes and lines; awaiting it
 * holds the reading (cancellation checks throw from there).
 */
export async function tallyStreams(
  input: AsyncIterable<Buffer>,
  context: TallyContext,
  skipLines: number,
  onChunk: (bytes: number, lines: number) => void | Promise<void>,
  users?: TallyUsers,
): Promise<StreamTallyResult> {
  const tally = new StreamTally(context, users);
  let skip = skipLines;
  for await (const { rows, bytes } of readCsvLines(input, context.maxLineBytes)) {
    const skipped = Math.min(skip, rows.length);
    skip -= skipped;
    tally.addRows(rows, skipped);
    await onChunk(bytes, rows.length);
  }
  return tally.result();
}
