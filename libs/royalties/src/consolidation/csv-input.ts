import { createReadStream } from 'node:fs';
import { readCsvLines } from '../inputs/csv-lines';
import { BuildInputError, LineTooLongError } from '../inputs/input-errors';
import { InputPolicy, isUrlLocation } from '../inputs/input-policy';
import { openInput } from '../inputs/input-source';
import type { Consolidation } from './consolidation';
import type { ProgressWatch } from './progress-watch';

export const USERS_HEADER = ['user_id', 'product_type', 'fee', 'origin'];
export const STREAMS_HEADER = ['date', 'user_id', 'region', 'track id', 'seconds'];

/**
 * Streams a CSV input in batches of parsed lines, after checking its header line; between batches, reports
 * progress and honours cancellation. Returns what the input looked like: its size (the bytes read when
 * the input did not say), and a local file's modification time.
 */
export async function streamCsv(
  location: string,
  policy: InputPolicy,
  phase: 'users' | 'streams',
  what: string,
  header: string[],
  watch: ProgressWatch,
  onRows: (rows: string[][], firstLine: number, skip: number) => void,
): Promise<Consolidation['streamsInput']> {
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

export function checkHeader(fields: string[], header: string[], what: string): void {
  // trim() also drops a UTF-8 byte order mark, which stays at the start of the first field.
  const found = fields.map((field) => field.trim().toLowerCase());
  if (found.length !== header.length || found.some((name, i) => name !== header[i])) {
    // What the line holds is not shown: the input may not be what it claims to be (see readStreamFields).
    const shape =
      found.length === header.length ? 'other names' : `${found.length} field${found.length === 1 ? '' : 's'}`;
    throw new BuildInputError(`${what}: the first line must be the header \`${header.join(';')}\` (found ${shape})`);
  }
}

/** Size of a local file; 0 for a URL or a file that cannot be read (opening it reports why). */
export async function fileSize(location: string, policy: InputPolicy): Promise<number> {
  if (isUrlLocation(location)) return 0;
  const input = await openInput(location, policy).catch(() => null);
  input?.stream.destroy();
  return input?.sizeBytes ?? 0;
}

/** The header line of a local file; at most `maxLineBytes` + 1 bytes are read, so only its own length is checked. */
export async function readFirstLine(path: string, maxLineBytes: number, what: string): Promise<string[]> {
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
