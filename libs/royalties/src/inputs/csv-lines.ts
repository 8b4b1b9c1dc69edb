import { StringDecoder } from 'node:string_decoder';
import Papa from 'papaparse';
import { LineTooLongError } from './input-errors';

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
 * A line longer than `maxLineBytes` throws LineTooLongError once the cap is passed: what is kept of an
 * unfinished line is at most the cap and one chunk, whatever the input holds.
 */
export async function* readCsvLines(input: AsyncIterable<Buffer>, maxLineBytes: number): AsyncGenerator<CsvLineBatch> {
  const parser = new Papa.Parser({ delimiter: ';', newline: '\n', fastMode: true });
  const decoder = new StringDecoder('utf8');
  const lengths = new LineLengths(maxLineBytes);
  let pending = '';
  for await (const chunk of input) {
    lengths.check(chunk);
    const text = pending + decoder.write(chunk);
    const parsed = parser.parse(text, 0, true) as Papa.ParseResult<string[]>;
    pending = text.substring(parsed.meta.cursor);
    lengths.completed(parsed.data.length);
    yield { rows: parsed.data, bytes: chunk.length };
  }
  const rest = pending + decoder.end();
  // The last line has no newline after it (when the file ends with one, nothing is left here).
  if (rest !== '') yield { rows: (parser.parse(rest, 0, false) as Papa.ParseResult<string[]>).data, bytes: 0 };
}

const LF = 0x0a;

/**
 * Checks the length of every line of an input, chunk by chunk, before the chunk is decoded. Per chunk it
 * costs two searches for LF (the first and the last), unless the span between them is longer than the
 * cap: only then are the lines in between measured one by one (never with the default cap and reads of
 * READ_CHUNK_BYTES). Lengths are in bytes, without the LF.
 */
class LineLengths {
  /** Bytes of the unfinished line that ended the previous chunks. */
  private carried = 0;
  /** Complete lines, and bytes, before the current chunk. */
  private lines = 0;
  private bytes = 0;

  constructor(private readonly maxLineBytes: number) {}

  check(chunk: Buffer): void {
    const max = this.maxLineBytes;
    const first = chunk.indexOf(LF);
    if (first < 0) {
      if (this.carried + chunk.length > max) this.fail(chunk, chunk.length);
      this.carried += chunk.length;
    } else {
      if (this.carried + first > max) this.fail(chunk, 0);
      const last = chunk.lastIndexOf(LF);
      if (last - first - 1 > max) {
        for (let start = first + 1; start <= last;) {
          const end = chunk.indexOf(LF, start);
          if (end - start > max) this.fail(chunk, start);
          start = end + 1;
        }
      }
      if (chunk.length - last - 1 > max) this.fail(chunk, last + 1);
      this.carried = chunk.length - last - 1;
    }
    this.bytes += chunk.length;
  }

  /** After the chunk's complete lines were parsed: one per LF it held. */
  completed(lines: number): void {
    this.lines += lines;
  }

  /** Only now, with the line known to be too long, are the LFs before it counted for its number. */
  private fail(chunk: Buffer, lineStart: number): never {
    let line = this.lines + 1;
    for (let i = chunk.indexOf(LF); i >= 0 && i < lineStart; i = chunk.indexOf(LF, i + 1)) line++;
    // At 0 (or, without a LF, the chunk's end) it is the line the earlier chunks began.
    const startByte =
      lineStart === 0 || lineStart === chunk.length ? this.bytes - this.carried : this.bytes + lineStart;
    throw new LineTooLongError(line, startByte, this.maxLineBytes);
  }
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
