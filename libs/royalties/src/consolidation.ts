import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import { BuildCancelledError, BuildInputError } from './build-errors';
import { openInput } from './input-source';
import { formatMinorUnits, ORIGIN_REVENUE_PERCENT, Origin, parseFeeCents, splitByLargestRemainder, unitsToCents } from './money';
import { readTrackMetadata, TrackRecord } from './track-metadata';
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
  streams: {
    lines: number;
    valid: number;
    bad: number;
    blank: number;
    seconds: number;
    /** Streams whose track is not in the metadata: not in any label's seconds, so not paid out. */
    unknownTrackStreams: number;
    unknownTrackSeconds: number;
    unknownTrackSample: string[];
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
}

const USERS_HEADER = ['user_id', 'product_type', 'fee', 'origin'];
const STREAMS_HEADER = ['date', 'user_id', 'region', 'track id', 'seconds'];
const SAMPLE_SIZE = 20;

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

  watch.startPhase('tracks', null);
  await watch.checkpoint(true);
  const metadata = await readTrackMetadata(inputs.tracks);
  const labelIndex = new Map<string, number>();
  const labelNames: string[] = [];
  const trackLabel = new Map<string, number>();
  const tracks: TrackRecord[] = [];
  let badTracks = metadata.problems.length;
  metadata.problems.forEach(({ element, reason }) => report({ source: 'tracks', element, reason }));
  metadata.tracks.forEach((track) => {
    if (trackLabel.has(track.trackId)) {
      badTracks++;
      return report({ source: 'tracks', reason: `track id ${clip(track.trackId)} listed twice (the first is kept)` });
    }
    let label = labelIndex.get(track.label);
    if (label === undefined) label = labelIndex.set(track.label, labelNames.push(track.label) - 1).get(track.label)!;
    trackLabel.set(track.trackId, label);
    tracks.push(track);
  });
  failOnBadShare('track metadata elements', badTracks, badTracks + tracks.length, options.maxBadLineShare, problems, 'tracks');

  const ledger = new UserLedger();
  const feesUnits: Record<Origin, bigint> = { app_store: 0n, web: 0n };
  const feesCents: Record<Origin, number> = { app_store: 0, web: 0 };
  const originUsers: Record<Origin, number> = { app_store: 0, web: 0 };
  const users = { lines: 0, listed: 0, bad: 0 };
  await streamCsv(inputs.usersCsv, 'users', 'users CSV', USERS_HEADER, watch, (fields, line) => {
    if (isBlankLine(fields)) return;
    users.lines++;
    const bad = (reason: string) => {
      users.bad++;
      report({ source: 'users', line, reason });
    };
    if (fields.length !== 4) return bad(`expected 4 fields separated by ';', found ${fields.length}`);
    const userId = fields[0].trim();
    const productType = fields[1].trim();
    const fee = parseFeeCents(fields[2]);
    const origin = fields[3].trim();
    if (!userId) return bad('user_id is empty');
    if (!productType) return bad('product_type is empty');
    if (fee === null) return bad(`fee ${clip(fields[2])} is not an amount with a decimal comma like 7,99`);
    if (origin !== 'app_store' && origin !== 'web') return bad(`origin ${clip(origin)} is neither app_store nor web`);
    if (!ledger.addListed(userId, productType, fee, origin)) return bad(`user ${clip(userId)} is listed twice (the first listing counts)`);
    users.listed++;
    originUsers[origin]++;
    feesCents[origin] += fee;
    feesUnits[origin] += BigInt(fee * ORIGIN_REVENUE_PERCENT[origin]);
  });
  failOnBadShare('users CSV lines', users.bad, users.lines, options.maxBadLineShare, problems, 'users');

  const labelSeconds = new Float64Array(labelNames.length);
  const streams: BuildCounts['streams'] = {
    lines: 0, valid: 0, bad: 0, blank: 0, seconds: 0,
    unknownTrackStreams: 0, unknownTrackSeconds: 0, unknownTrackSample: [],
    unknownUserStreams: 0, unknownUsers: 0, unknownUserSample: [],
  };
  const streamsInput = await streamCsv(inputs.streamsCsv, 'streams', 'streams CSV', STREAMS_HEADER, watch, (fields, line) => {
    if (isBlankLine(fields)) {
      streams.blank++;
      return;
    }
    streams.lines++;
    const stream = readStreamLine(fields);
    if (typeof stream === 'string') {
      streams.bad++;
      return report({ source: 'streams', line, reason: stream });
    }
    const { userId, trackId, seconds } = stream;
    streams.valid++;
    streams.seconds += seconds;
    let user = ledger.indexOf(userId);
    if (user === undefined) {
      user = ledger.addUnlisted(userId);
      streams.unknownUsers++;
      if (streams.unknownUserSample.length < SAMPLE_SIZE) streams.unknownUserSample.push(userId);
    }
    if (ledger.origin[user] === 0) streams.unknownUserStreams++;
    ledger.seconds[user] += seconds;
    const label = trackLabel.get(trackId);
    if (label === undefined) {
      streams.unknownTrackStreams++;
      streams.unknownTrackSeconds += seconds;
      if (streams.unknownTrackSample.length < SAMPLE_SIZE && !streams.unknownTrackSample.includes(trackId)) streams.unknownTrackSample.push(trackId);
    } else {
      labelSeconds[label] += seconds;
    }
  });
  failOnBadShare('streams CSV lines', streams.bad, streams.lines, options.maxBadLineShare, problems, 'streams');

  const totalUnits = feesUnits.app_store + feesUnits.web;
  const totalCents = unitsToCents(totalUnits);
  const payouts = splitByLargestRemainder(totalCents, labelNames.map((label, i) => ({ key: label, weight: labelSeconds[i] })));
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
    revenue: { totalExact: formatMinorUnits(totalUnits, 4), totalCents: Number(totalCents), byOrigin: { app_store: byOrigin('app_store'), web: byOrigin('web') } },
    unallocatedCents: Number(totalCents) - paid,
    counts: { users, streams, tracks: { count: tracks.length, bad: badTracks, recoveredFromKeys: metadata.recoveredFromKeys } },
    problems,
    problemCount,
    streamsInput,
  };
}

/** The parser every reader of the users and streams files uses (the build and the consolidated pages). */
export function royaltiesCsvParser(options: { info?: boolean } = {}) {
  // No quoting in these formats, and both line endings may appear in one file: one record is one line.
  return parse({ delimiter: ';', record_delimiter: ['\r\n', '\n'], quote: false, relax_column_count: true, bom: true, info: options.info ?? false });
}

export interface StreamLine {
  date: string;
  userId: string;
  region: string;
  trackId: string;
  seconds: number;
}

export function isBlankLine(fields: string[]): boolean {
  return fields.length === 1 && fields[0].trim() === '';
}

/** One data line of the streams CSV, or the reason it is malformed. */
export function readStreamLine(fields: string[]): StreamLine | string {
  if (fields.length !== 5) return `expected 5 fields separated by ';', found ${fields.length}`;
  const date = fields[0].trim();
  if (!isDayMonthYear(date)) return `date ${clip(fields[0])} is not a day/month/year date`;
  const userId = fields[1].trim();
  if (!userId) return 'user_id is empty';
  const region = fields[2].trim();
  if (!region) return 'region is empty';
  const trackId = fields[3].trim();
  if (!trackId) return 'track id is empty';
  const seconds = parseSeconds(fields[4].trim());
  if (seconds < 0) return `seconds ${clip(fields[4])} is not a non-negative integer`;
  return { date, userId, region, trackId, seconds };
}

async function streamCsv(
  location: string,
  phase: 'users' | 'streams',
  what: string,
  header: string[],
  watch: ProgressWatch,
  onRecord: (fields: string[], line: number) => void,
): Promise<{ sizeBytes: number | null; modifiedMs: number | null }> {
  const input = await openInput(location, { what });
  watch.startPhase(phase, input.sizeBytes);
  let line = 0;
  const sink = new Writable({
    objectMode: true,
    highWaterMark: 4096,
    write(fields: string[], _encoding, callback) {
      line++;
      watch.rowsRead++;
      if (line === 1) {
        const found = fields.map((field) => field.trim().toLowerCase());
        if (found.length !== header.length || found.some((name, i) => name !== header[i])) {
          return callback(new BuildInputError(`${what}: the first line must be the header \`${header.join(';')}\`, found \`${clip(fields.join(';'), 80)}\``));
        }
      } else {
        onRecord(fields, line);
      }
      callback();
    },
  });
  await pipeline(input.stream, watch.gate(), royaltiesCsvParser(), sink);
  await watch.checkpoint(true);
  return { sizeBytes: input.sizeBytes, modifiedMs: input.modifiedMs };
}

/** Counts bytes between the file and the parser; between chunks, reports progress and honours cancellation. */
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

  gate(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.bytesRead += chunk.length;
        this.checkpoint(false).then(() => callback(null, chunk), callback);
      },
    });
  }

  async checkpoint(force: boolean): Promise<void> {
    const now = Date.now();
    if (!force && now - this.lastCheck < this.intervalMs) return;
    this.lastCheck = now;
    if (await this.options.isCancelled?.()) throw new BuildCancelledError();
    const percent = this.bytesTotal ? Math.min(100, Math.round((this.bytesRead / this.bytesTotal) * 1000) / 10) : null;
    await this.options.onProgress?.({ phase: this.phase, rowsRead: this.rowsRead, bytesRead: this.bytesRead, bytesTotal: this.bytesTotal, percent });
  }
}

function failOnBadShare(what: string, bad: number, total: number, maxShare: number, problems: InputProblem[], source: InputProblem['source']): void {
  if (total === 0 || bad / total <= maxShare) return;
  const first = problems.find((problem) => problem.source === source);
  const where = first ? ` First: ${first.line !== undefined ? `line ${first.line}` : `element ${first.element}`}: ${first.reason}.` : '';
  throw new BuildInputError(
    `${bad} of ${total} ${what} (${((bad / total) * 100).toFixed(2)}%) are malformed, more than the allowed ${(maxShare * 100).toFixed(2)}% (ROYALTIES_MAX_BAD_LINE_SHARE).${where}`,
  );
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Digits only, at most 15 (exact in a double); -1 otherwise. Char codes: this runs once per stream line. */
function parseSeconds(text: string): number {
  const length = text.length;
  if (length === 0 || length > 15) return -1;
  let value = 0;
  for (let i = 0; i < length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * `d/m/yyyy` (day and month of one or two digits) packed as yyyymmdd, or -1 when it is not a calendar
 * date. Char codes and no allocation: this runs once per stream line.
 */
function dayMonthYear(text: string): number {
  const firstSlash = text.indexOf('/');
  const secondSlash = text.indexOf('/', firstSlash + 1);
  if (firstSlash < 1 || firstSlash > 2 || secondSlash - firstSlash < 2 || secondSlash - firstSlash > 3 || text.length - secondSlash !== 5) return -1;
  const day = digitsValue(text, 0, firstSlash);
  const month = digitsValue(text, firstSlash + 1, secondSlash);
  const year = digitsValue(text, secondSlash + 1, text.length);
  if (day < 1 || month < 1 || month > 12 || year < 0 || day > DAYS_IN_MONTH[month - 1]) return -1;
  if (month === 2 && day === 29 && !(year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0))) return -1;
  return year * 10_000 + month * 100 + day;
}

function isDayMonthYear(text: string): boolean {
  return dayMonthYear(text) >= 0;
}

function digitsValue(text: string, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** `01/03/2019` (day/month/year) -> `2019-03-01`; null when not a calendar date. */
export function dayMonthYearToIso(text: string): string | null {
  const packed = dayMonthYear(text.trim());
  if (packed < 0) return null;
  const digits = String(packed).padStart(8, '0');
  return `${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6)}`;
}

function clip(text: string, max = 40): string {
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}
