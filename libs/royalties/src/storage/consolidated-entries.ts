import { BuildInputError, LineTooLongError } from '../inputs/input-errors';
import { isBlankLine, lineBytes, readCsvLines } from '../inputs/csv-lines';
import { dayMonthYearToIso, readStreamLine } from '../consolidation/stream-line';
import type { InputPolicy } from '../inputs/input-policy';
import { openInput } from '../inputs/input-source';
import type { BuildDocument, RoyaltiesRepository } from './royalties.repository';
import { centsToNumber } from '../consolidation/money';

export interface ConsolidatedEntry {
  date: string;
  user_id: string;
  product_type: string | null;
  fee: number | null;
  origin: string | null;
  region: string;
  track_id: string;
  track_name: string | null;
  track_label: string | null;
  seconds: number;
}

export interface ConsolidatedPage {
  items: ConsolidatedEntry[];
  /** Pass as `cursor` for the next page; null at the end of the file. */
  next: string | null;
}

/** The streams file changed since the build read it: its pages would not match the build's totals. */
export class InputChangedError extends Error {
  override readonly name = 'InputChangedError';
}

interface Cursor {
  /** Byte offset of the next line, and its 1-based line number. */
  offset: number;
  line: number;
}

function decodeCursor(cursor: string | undefined): Cursor | null {
  if (!cursor) return { offset: 0, line: 0 };
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as Cursor;
    return Number.isSafeInteger(value.offset) &&
      value.offset >= 0 &&
      Number.isSafeInteger(value.line) &&
      value.line >= 0
      ? value
      : null;
  } catch {
    return null;
  }
}

const encodeCursor = (cursor: Cursor) => Buffer.from(JSON.stringify(cursor)).toString('base64url');

/**
 * A page of consolidated stream entries of a build: stream lines joined with their user and track.
 * Entries are not stored (ten million documents would cost more than the whole consolidation); each
 * page reads the next lines of the build's streams file from a byte-offset cursor and joins them
 * with the build's stored users and tracks. Malformed lines are skipped (the build reported them).
 * The cursor comes from the client: the file is opened through the same policy as the build's (a URL
 * is checked again on every hop and connection), and an offset past the end the build saw is refused.
 */
export async function readConsolidatedPage(
  repository: RoyaltiesRepository,
  build: BuildDocument,
  cursorText: string | undefined,
  limit: number,
  policy: InputPolicy,
): Promise<ConsolidatedPage> {
  const cursor = decodeCursor(cursorText);
  const seen = build.result?.streamsInput;
  if (!cursor || (seen?.sizeBytes != null && cursor.offset > seen.sizeBytes))
    throw new RangeError('cursor is not one this endpoint returned');
  const location = build.inputs.streamsCsv;
  const input = await openInput(location, policy, { startByte: cursor.offset, what: 'streams CSV' });
  if (seen?.modifiedMs != null && (input.sizeBytes !== seen.sizeBytes || input.modifiedMs !== seen.modifiedMs)) {
    input.stream.destroy();
    throw new InputChangedError(`the streams file ${location} changed since build ${build._id} read it`);
  }
  const lines: Array<NonNullable<Exclude<ReturnType<typeof readStreamLine>, string>>> = [];
  let next: Cursor | null = null;
  let line = cursor.line;
  let offset = cursor.offset;
  try {
    read: for await (const { rows } of readCsvLines(input.stream, policy.maxLineBytes)) {
      for (const record of rows) {
        line++;
        offset += lineBytes(record);
        if (line === 1 || isBlankLine(record)) continue;
        const stream = readStreamLine(record);
        if (typeof stream !== 'string') lines.push(stream);
        if (lines.length === limit) {
          next = { offset, line };
          break read;
        }
      }
    }
  } catch (error) {
    if (error instanceof LineTooLongError) {
      throw new BuildInputError(
        `streams CSV: line ${cursor.line + error.line} is longer than ${error.maxLineBytes} bytes (ROYALTIES_MAX_LINE_BYTES)`,
      );
    }
    throw error;
  } finally {
    input.stream.destroy();
  }
  const [users, tracks] = await Promise.all([
    repository.findUsers(
      build,
      lines.map((entry) => entry.userId),
    ),
    repository.findTracks(
      build,
      lines.map((entry) => entry.trackId),
    ),
  ]);
  const items = lines.map((entry): ConsolidatedEntry => {
    const user = users.get(entry.userId);
    const track = tracks.get(entry.trackId);
    return {
      date: dayMonthYearToIso(entry.date) ?? entry.date,
      user_id: entry.userId,
      product_type: user?.productType ?? null,
      fee: user?.feeCents == null ? null : centsToNumber(user.feeCents),
      origin: user?.origin ?? null,
      region: entry.region.toUpperCase(),
      track_id: entry.trackId,
      track_name: track?.trackName ?? null,
      track_label: track?.label ?? null,
      seconds: entry.seconds,
    };
  });
  return { items, next: next ? encodeCursor(next) : null };
}
