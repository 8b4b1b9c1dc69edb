import { StringDecoder } from 'node:string_decoder';
import Papa from 'papaparse';

/**
 * Bytes per read of a local CSV file. Small enough that a chunk's decoded text (one string per chunk, at
 * most this many characters) and its line array stay below V8's large-object size (128 KiB): they are then
 * allocated in the young generation and die there, in the next scavenge. With 256 KiB reads each chunk's
 * text went to the large-object space, which only a full collection frees, and the worker's resident
 * memory grew by tens of megabytes per thread before one ran. Large enough that per-chunk costs vanish
 * (~2,000 stream lines per chunk).
 */
export const READ_CHUNK_BYTES = 64 * 1024;

/** The complete lines of one input chunk, split into fields, and the input bytes that chunk had. */
export interface CsvLineBatch {
  rows: string[][];
  bytes: number;
}

/**
 * The parser every reader of the users and streams files uses (the build and the consolidated pages):
 * papaparse's incremental `Parser` in fast mode. These formats have no quoting, so one record is one
 * physical line: lines are split at LF, and a CRLF line keeps its CR at the end of its last field, which
 * every reader trims (as it trims every field). Reported line numbers are therefore physical lines.
 *
 * `Papa.Parser#parse(text, baseIndex, ignoreLastRow)` is what papaparse's own stream readers call per
 * chunk: with `ignoreLastRow` it leaves the unfinished last line out and says where it starts
 * (`meta.cursor`), so it is carried into the next chunk. Input bytes are decoded with a StringDecoder,
 * so a multi-byte character split across two chunks stays whole.
 * A UTF-8 byte order mark stays at the start of the first field of the header line; `trim()`, which
 * every reader applies to the header, removes it (and byte offsets of lines stay exact).
 */
export async function* readCsvLines(input: AsyncIterable<Buffer>): AsyncGenerator<CsvLineBatch> {
  const parser = new Papa.Parser({ delimiter: ';', newline: '\n', fastMode: true });
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of input) {
    const text = pending + decoder.write(chunk);
    const parsed = parser.parse(text, 0, true) as Papa.ParseResult<string[]>;
    pending = text.substring(parsed.meta.cursor);
    yield { rows: parsed.data, bytes: chunk.length };
  }
  const rest = pending + decoder.end();
  // The last line has no newline after it (when the file ends with one, nothing is left here).
  if (rest !== '')
    yield { rows: (parser.parse(rest, 0, false) as Papa.ParseResult<string[]>).data, bytes: 0 };
}

/** Bytes a line took in the file, its newline included (fast mode splits at `;` and LF only, so joining restores it). */
export function lineBytes(fields: string[]): number {
  return Buffer.byteLength(fields.join(';')) + 1;
}

export function isBlankLine(fields: string[]): boolean {
  return fields.length === 1 && fields[0].trim() === '';
}

/**
 * A copy of a field that shares no memory with the chunk it was split from. V8 may make a substring
 * a view into its parent string, so a user id kept for the whole build would otherwise keep its
 * whole input chunk alive. Used only for strings kept beyond the chunk (new ids, samples).
 */
export function detachedCopy(field: string): string {
  return Buffer.from(field, 'utf8').toString('utf8');
}
