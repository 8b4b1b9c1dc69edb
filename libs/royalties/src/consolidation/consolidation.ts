import { createReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BuildInputError, LineTooLongError } from '../inputs/input-errors';
import { BuildCancelledError } from './build-cancelled-error';
import { isBlankLine, readCsvLines } from '../inputs/csv-lines';
import { InputPolicy, isUrlLocation, STRICT_INPUT_POLICY } from '../inputs/input-policy';
import { openInput } from '../inputs/input-source';
import {
  formatMinorUnits,
  ORIGIN_REVENUE_PERCENT,
  Origin,
  parseFeeCents,
  splitByLargestRemainder,
  unitsToCents,
} from './money';
import { readTrackMetadata, TrackRecord } from '../inputs/track-metadata';
import {
  dayMonthYear,
  RangeUsers,
  SAMPLE_SIZE,
  StreamLineCounts,
  StreamTally,
  StreamTallyResult,
  TallyContext,
} from './stream-tally';
import { SharedUserIndex } from './shared-user-index';
import { lineAlignedRanges, tallyRange, tallyRangesInThreads } from './streams-ranges';
import { UserLedger } from './user-ledger';

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

const USERS_HEADER = ['user_id', 'product_type', 'fee', 'origin'];
const STREAMS_HEADER = ['date', 'user_id', 'region', 'track id', 'seconds'];

/**
 * Turns the three inputs into per-user seconds, per-label seconds and payouts, and revenue. Memory is
 * bounded by users, tracks and labels: the tracks and users are loaded first, then the streams file is
 * streamed once and only accumulated. Parsing runs chunk by chunk, so the event loop keeps turning.
 */
export async function consolidateRoyalties(inputs: BuildInputs, options: ConsolidationOptions): Promise<Consolidation> {
  const maxReported = options.maxReportedProblems ?? 100;
  const problems: InputProblem[] = [];
  let problemCount = 0;
  const report = (problem: InputProblem) => {
    problemCount++;
    if (problems.length < maxReported) problems.push(problem);
  };
  const watch = new ProgressWatch(options);
  const policy = options.inputPolicy ?? STRICT_INPUT_POLICY;

  watch.startPhase('tracks', null);
  await watch.checkpoint(true);
  const metadata = await readTrackMetadata(inputs.tracks, policy);
  const labelIndex = new Map<string, number>();
  const labelNames: string[] = [];
  const trackLabel = new Map<string, number>();
  const tracks: TrackRecord[] = [];
  let badTracks = metadata.problems.length;
  metadata.problems.forEach(({ element, reason }) => report({ source: 'tracks', element, reason }));
  metadata.tracks.forEach((track) => {
    if (trackLabel.has(track.trackId)) {
      badTracks++;
      return report({ source: 'tracks', reason: 'track id listed twice (the first is kept)' });
    }
    let label = labelIndex.get(track.label);
    if (label === undefined) label = labelIndex.set(track.label, labelNames.push(track.label) - 1).get(track.label)!;
    trackLabel.set(track.trackId, label);
    tracks.push(track);
  });
  failOnBadShare(
    'track metadata elements',
    badTracks,
    badTracks + tracks.length,
    options.maxBadLineShare,
    problems,
    'tracks',
  );

  const ledger = new UserLedger();
  const feesUnits: Record<Origin, bigint> = { app_store: 0n, web: 0n };
  const feesCents: Record<Origin, number> = { app_store: 0, web: 0 };
  const originUsers: Record<Origin, number> = { app_store: 0, web: 0 };
  const users = { lines: 0, listed: 0, bad: 0 };
  // Reasons name the field, never its content (see readStreamFields).
  const addUserLine = (fields: string[]): string | null => {
    if (fields.length !== 4) return `expected 4 fields separated by ';', found ${fields.length}`;
    const userId = fields[0].trim();
    const productType = fields[1].trim();
    const fee = parseFeeCents(fields[2]);
    const origin = fields[3].trim();
    if (!userId) return 'user_id is empty';
    if (!productType) return 'product_type is empty';
    if (fee === null) return 'fee is not an amount with a decimal comma like 7,99';
    if (origin !== 'app_store' && origin !== 'web') return 'origin is neither app_store nor web';
    if (!ledger.addListed(userId, productType, fee, origin))
      return 'user_id is listed on an earlier line too (the first listing counts)';
    users.listed++;
    originUsers[origin]++;
    feesCents[origin] += fee;
    feesUnits[origin] += BigInt(fee * ORIGIN_REVENUE_PERCENT[origin]);
    return null;
  };
  await streamCsv(inputs.usersCsv, policy, 'users', 'users CSV', USERS_HEADER, watch, (rows, firstLine, skip) => {
    for (let r = skip; r < rows.length; r++) {
      const fields = rows[r];
      if (isBlankLine(fields)) continue;
      users.lines++;
      const reason = addUserLine(fields);
      if (reason !== null) {
        users.bad++;
        report({ source: 'users', line: firstLine + r, reason });
      }
    }
  });
  failOnBadShare('users CSV lines', users.bad, users.lines, options.maxBadLineShare, problems, 'users');

  const labelSeconds = new Float64Array(labelNames.length);
  const streams: BuildCounts['streams'] = {
    lines: 0,
    valid: 0,
    bad: 0,
    blank: 0,
    seconds: 0,
    unknownTrackStreams: 0,
    unknownTrackSeconds: 0,
    unknownTrackSample: [],
    unknownUserStreams: 0,
    unknownUsers: 0,
    unknownUserSample: [],
  };
  const labelTracks = [...trackLabel];
  const context: TallyContext = {
    trackIds: labelTracks.map(([trackId]) => trackId),
    trackLabels: Int32Array.from(labelTracks, ([, label]) => label),
    labelCount: labelNames.length,
    maxReportedProblems: Math.max(0, maxReported - problems.length),
    maxLineBytes: policy.maxLineBytes,
  };
  const { tallies, streamsInput } = await tallyStreamsInput(inputs.streamsCsv, policy, context, ledger, watch, options);
  // Tallies in file order: first appearances, samples and problems come out as one pass would give them.
  let lineOffset = 0;
  for (const tally of tallies) {
    streams.lines += tally.lines;
    streams.valid += tally.valid;
    streams.bad += tally.bad;
    streams.blank += tally.blank;
    streams.seconds += tally.seconds;
    streams.unknownTrackStreams += tally.unknownTrackStreams;
    streams.unknownTrackSeconds += tally.unknownTrackSeconds;
    for (const trackId of tally.unknownTrackSample) {
      if (streams.unknownTrackSample.length < SAMPLE_SIZE && !streams.unknownTrackSample.includes(trackId))
        streams.unknownTrackSample.push(trackId);
    }
    for (let label = 0; label < labelSeconds.length; label++) labelSeconds[label] += tally.labelSeconds[label];
    // A thread's sums: by ledger position for the users file's users, then by id for the others.
    for (let user = 0; user < tally.listedUsers; user++) {
      ledger.seconds[user] += tally.userSeconds[user];
      ledger.streams[user] += tally.userStreams[user];
    }
    tally.unlistedIds.forEach((userId, k) => {
      const user = ledger.indexOf(userId) ?? ledger.addUnlisted(userId);
      ledger.seconds[user] += tally.userSeconds[tally.listedUsers + k];
      ledger.streams[user] += tally.userStreams[tally.listedUsers + k];
    });
    tally.problems.forEach(({ line, reason }) => report({ source: 'streams', line: lineOffset + line, reason }));
    problemCount += tally.problemCount - tally.problems.length;
    lineOffset += tally.physicalLines;
  }
  streams.unknownUsers = ledger.unlistedCount;
  streams.unknownUserSample = ledger.unlistedSample.slice(0, SAMPLE_SIZE);
  for (let user = 0; user < ledger.size; user++)
    if (ledger.origin[user] === 0) streams.unknownUserStreams += ledger.streams[user];
  failOnBadShare('streams CSV lines', streams.bad, streams.lines, options.maxBadLineShare, problems, 'streams');

  const totalUnits = feesUnits.app_store + feesUnits.web;
  const totalCents = unitsToCents(totalUnits);
  const payouts = splitByLargestRemainder(
    totalCents,
    labelNames.map((label, i) => ({ key: label, weight: labelSeconds[i] })),
  );
  const labels = labelNames
    .map((label, i) => ({ label, seconds: labelSeconds[i], payoutCents: Number(payouts.get(label) ?? 0n) }))
    .sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
  const paid = labels.reduce((sum, { payoutCents }) => sum + payoutCents, 0);
  const byOrigin = (origin: Origin): OriginRevenue => ({
    users: originUsers[origin],
    feesCents: feesCents[origin],
    revenueExact: formatMinorUnits(feesUnits[origin], 4),
  });

  return {
    ledger,
    tracks,
    labels,
    revenue: {
      totalExact: formatMinorUnits(totalUnits, 4),
      totalCents: Number(totalCents),
      byOrigin: { app_store: byOrigin('app_store'), web: byOrigin('web') },
    },
    unallocatedCents: Number(totalCents) - paid,
    counts: {
      users,
      streams,
      tracks: { count: tracks.length, bad: badTracks, recoveredFromKeys: metadata.recoveredFromKeys },
    },
    problems,
    problemCount,
    streamsInput,
  };
}

/**
 * Streams a CSV input in batches of parsed lines, after checking its header line; between batches, reports
 * progress and honours cancellation. Returns what the input looked like: its size (the bytes read when
 * the input did not say), and a local file's modification time.
 */
async function streamCsv(
  location: string,
  policy: InputPolicy,
  phase: 'users' | 'streams',
  what: string,
  header: string[],
  watch: ProgressWatch,
  onRows: (rows: string[][], firstLine: number, skip: number) => void,
): Promise<{ sizeBytes: number | null; modifiedMs: number | null }> {
  const input = await openInput(location, policy, { what });
  watch.startPhase(phase, input.sizeBytes);
  let line = 0;
  let bytesRead = 0;
  try {
    for await (const { rows, bytes } of readCsvLines(input.stream, policy.maxLineBytes)) {
      watch.rowsRead += rows.length;
      const skip = line === 0 && rows.length > 0 ? 1 : 0;
      if (skip) checkHeader(rows[0], header, what);
      onRows(rows, line + 1, skip);
      line += rows.length;
      bytesRead += bytes;
      watch.addBytes(bytes);
      await watch.checkpoint(false);
    }
  } catch (error) {
    if (error instanceof LineTooLongError) throw new BuildInputError(`${what}: ${error.message}`);
    throw error;
  } finally {
    input.stream.destroy();
  }
  await watch.checkpoint(true);
  return { sizeBytes: input.sizeBytes ?? bytesRead, modifiedMs: input.modifiedMs };
}

function checkHeader(fields: string[], header: string[], what: string): void {
  // trim() also drops a UTF-8 byte order mark, which stays at the start of the first field.
  const found = fields.map((field) => field.trim().toLowerCase());
  if (found.length !== header.length || found.some((name, i) => name !== header[i])) {
    // What the line holds is not shown: the input may not be what it claims to be (see readStreamFields).
    const shape =
      found.length === header.length ? 'other names' : `${found.length} field${found.length === 1 ? '' : 's'}`;
    throw new BuildInputError(`${what}: the first line must be the header \`${header.join(';')}\` (found ${shape})`);
  }
}

/**
 * Tallies the streams file. A large local file is cut in byte ranges of whole lines: this thread reads
 * the first, worker threads the others, each summing per ledger position through one shared index of the
 * users file's ids (and by id for users missing from it); the caller merges the tallies into the ledger.
 * Progress and cancellation are checked between this thread's chunks, then while it waits. Otherwise (a URL, a small file, one thread configured) this thread reads it all.
 * The tallies come back in file order.
 */
async function tallyStreamsInput(
  location: string,
  policy: InputPolicy,
  context: TallyContext,
  ledger: UserLedger,
  watch: ProgressWatch,
  options: ConsolidationOptions,
): Promise<{ tallies: StreamTallyResult[]; streamsInput: { sizeBytes: number | null; modifiedMs: number | null } }> {
  const what = 'streams CSV';
  const threads = Math.max(
    1,
    Math.min(
      options.streamThreads ?? 1,
      Math.floor((await fileSize(location, policy)) / (options.minBytesPerThread ?? 16 * 1024 * 1024)),
    ),
  );
  if (threads < 2) {
    const tally = new StreamTally(context, ledger);
    const streamsInput = await streamCsv(
      location,
      policy,
      'streams',
      what,
      STREAMS_HEADER,
      watch,
      (rows, _firstLine, skip) => tally.addRows(rows, skip),
    );
    return { tallies: [tally.result()], streamsInput };
  }
  const input = await openInput(location, policy, { what });
  input.stream.destroy();
  // The file the policy allowed, symlinks resolved: the ranges and threads read that one.
  const path = input.path!;
  watch.startPhase('streams', input.sizeBytes);
  checkHeader(await readFirstLine(path, policy.maxLineBytes, what), STREAMS_HEADER, what);
  const [first, ...rest] = await lineAlignedRanges(path, input.sizeBytes!, threads);
  const countChunk = (bytes: number, lines: number) => {
    watch.rowsRead += lines;
    watch.addBytes(bytes);
  };
  // The ledger holds the users file's users only (positions 0 to size - 1): unlisted ones are added by the merge.
  const listed = SharedUserIndex.build(ledger.ids());
  const others = tallyRangesInThreads(path, rest, context, listed, countChunk);
  others.results.catch(() => undefined); // awaited below; a failure also ends this thread's reading
  try {
    // This thread reads the first range while the others run, through the same shared index (a lookup
    // there costs about a third of a `Map` lookup of a freshly parsed id); merged like the others.
    const firstTally = await tallyRange(
      { path, range: first, skipLines: 1, context },
      async (bytes, lines) => {
        countChunk(bytes, lines);
        await watch.checkpoint(false);
      },
      new RangeUsers(listed),
    );
    const interval = Math.max(20, options.checkIntervalMs ?? 500);
    let finished = false;
    const settled = others.results.then(
      () => void (finished = true),
      () => void (finished = true),
    );
    while (!finished) {
      await Promise.race([settled, sleep(interval)]);
      if (!finished) await watch.checkpoint(false);
    }
    const tallies = [firstTally, ...(await others.results)];
    await watch.checkpoint(true);
    return { tallies, streamsInput: { sizeBytes: input.sizeBytes, modifiedMs: input.modifiedMs } };
  } catch (error) {
    others.stop(error as Error);
    throw error;
  }
}

/** Size of a local file; 0 for a URL or a file that cannot be read (opening it reports why). */
async function fileSize(location: string, policy: InputPolicy): Promise<number> {
  if (isUrlLocation(location)) return 0;
  const input = await openInput(location, policy).catch(() => null);
  input?.stream.destroy();
  return input?.sizeBytes ?? 0;
}

/** The header line of a local file; at most `maxLineBytes` + 1 bytes are read, so only its own length is checked. */
async function readFirstLine(path: string, maxLineBytes: number, what: string): Promise<string[]> {
  const head = createReadStream(path, { end: maxLineBytes, highWaterMark: Math.min(maxLineBytes + 1, 64 * 1024) });
  try {
    for await (const { rows } of readCsvLines(head, maxLineBytes)) if (rows.length > 0) return rows[0];
  } catch (error) {
    if (error instanceof LineTooLongError) throw new BuildInputError(`${what}: ${error.message}`);
    throw error;
  } finally {
    head.destroy();
  }
  return [];
}

/** Counts the bytes read of the current input; between chunks, reports progress and honours cancellation. */
class ProgressWatch {
  rowsRead = 0;
  private phase: BuildPhase = 'tracks';
  private bytesRead = 0;
  private bytesTotal: number | null = null;
  private lastCheck = 0;
  private readonly intervalMs: number;

  constructor(private readonly options: ConsolidationOptions) {
    this.intervalMs = options.checkIntervalMs ?? 500;
  }

  startPhase(phase: BuildPhase, bytesTotal: number | null): void {
    this.phase = phase;
    this.bytesRead = 0;
    this.bytesTotal = bytesTotal;
  }

  addBytes(bytes: number): void {
    this.bytesRead += bytes;
  }

  async checkpoint(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && now - this.lastCheck < this.intervalMs) return;
    this.lastCheck = now;
    if (await this.options.isCancelled?.()) throw new BuildCancelledError();
    const percent = this.bytesTotal ? Math.min(100, Math.round((this.bytesRead / this.bytesTotal) * 1000) / 10) : null;
    await this.options.onProgress?.({
      phase: this.phase,
      rowsRead: this.rowsRead,
      bytesRead: this.bytesRead,
      bytesTotal: this.bytesTotal,
      percent,
    });
  }
}

function failOnBadShare(
  what: string,
  bad: number,
  total: number,
  maxShare: number,
  problems: InputProblem[],
  source: InputProblem['source'],
): void {
  if (total === 0 || bad / total <= maxShare) return;
  const first = problems.find((problem) => problem.source === source);
  const where = first
    ? ` First: ${first.line !== undefined ? `line ${first.line}` : `element ${first.element}`}: ${first.reason}.`
    : '';
  throw new BuildInputError(
    `${bad} of ${total} ${what} (${((bad / total) * 100).toFixed(2)}%) are malformed, more than the allowed ${(maxShare * 100).toFixed(2)}% (ROYALTIES_MAX_BAD_LINE_SHARE).${where}`,
  );
}

/** `01/03/2019` (day/month/year) -> `2019-03-01`; null when not a calendar date. */
export function dayMonthYearToIso(text: string): string | null {
  const packed = dayMonthYear(text.trim());
  if (packed < 0) return null;
  const digits = String(packed).padStart(8, '0');
  return `${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6)}`;
}
