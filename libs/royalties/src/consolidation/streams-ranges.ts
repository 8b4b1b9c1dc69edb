import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { BuildInputError, LineTooLongError } from '../inputs/input-errors';
import { READ_CHUNK_BYTES } from '../inputs/csv-lines';
import { SharedUserIndex, SharedUserIndexBuffers } from './shared-user-index';
import { RangeUsers, StreamTallyResult, tallyStreams, TallyContext, TallyUsers } from './stream-tally';

/** A byte range `[start, end)` of a file that begins at a line start and ends just after a newline (or at the end of the file). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Splits a file of `size` bytes into at most `count` ranges of whole lines: each cut is moved from an
 * even split point to just after the next LF, so a line (and a CRLF) is never split between two ranges.
 * A cut that finds no LF before the end of the file, or the next cut, is dropped (fewer, larger ranges).
 */
export async function lineAlignedRanges(path: string, size: number, count: number): Promise<ByteRange[]> {
  const cuts = [0];
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    for (let k = 1; k < count; k++) {
      // From the byte before the even split point: when that byte is a LF, the split point is a line start already.
      let position = Math.max(Math.floor((size * k) / count) - 1, cuts[cuts.length - 1]);
      let cut = -1;
      while (cut < 0 && position < size) {
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        const newline = buffer.subarray(0, bytesRead).indexOf(0x0a);
        if (newline >= 0) cut = position + newline + 1;
        position += bytesRead;
      }
      if (cut > cuts[cuts.length - 1] && cut < size) cuts.push(cut);
    }
  } finally {
    await file.close();
  }
  cuts.push(size);
  return cuts.slice(1).map((end, i) => ({ start: cuts[i], end }));
}

interface RangeJob {
  path: string;
  range: ByteRange;
  skipLines: number;
  context: TallyContext;
  /** The users file's ids -> ledger positions, shared by all threads: a thread returns its sums by position. */
  listed?: SharedUserIndexBuffers;
}

type RangeMessage =
  | { type: 'progress'; bytes: number; lines: number }
  | { type: 'done'; result: StreamTallyResult }
  | { type: 'failed'; message: string; inputError: boolean };

/**
 * Tallies one range of the streams file in this thread, into `users` when given (else the range's own
 * index). A line longer than the cap fails it with the line's byte offset in the file (its number in
 * the file is not known inside a range).
 */
export function tallyRange(
  job: RangeJob,
  onChunk: (bytes: number, lines: number) => void | Promise<void>,
  users?: TallyUsers,
): Promise<StreamTallyResult> {
  const { path, range } = job;
  // createReadStream's `end` is inclusive, and refuses an end before the start (an empty range).
  const input =
    range.end > range.start
      ? createReadStream(path, {
          start: range.start,
          end: range.end - 1,
          highWaterMark: READ_CHUNK_BYTES,
        })
      : Readable.from([]);
  return tallyStreams(input, job.context, job.skipLines, onChunk, users)
    .catch((error: Error) => {
      if (!(error instanceof LineTooLongError)) throw error;
      throw new BuildInputError(
        `streams CSV: the line at byte ${range.start + error.startByte} is longer than ${error.maxLineBytes} bytes (ROYALTIES_MAX_LINE_BYTES)`,
      );
    })
    .finally(() => input.destroy());
}

/**
 * Tallies each range in its own worker thread, all at once (the ranges after the first one: this thread
 * reads that). Users found in `listed` are summed by its positions, the others by id. `onProgress` gets
 * the bytes and lines read since its last call, as the threads report them. `stop()` ends every thread
 * (on cancellation); the promise then rejects with the reason given.
 */
export function tallyRangesInThreads(
  path: string,
  ranges: ByteRange[],
  context: TallyContext,
  listed: SharedUserIndex | undefined,
  onProgress: (bytes: number, lines: number) => void,
): { results: Promise<StreamTallyResult[]>; stop: (reason: Error) => void } {
  const threads: Worker[] = [];
  const stops: Array<(reason: Error) => void> = [];
  const results = Promise.all(
    ranges.map((range) => {
      const job: RangeJob = { path, range, skipLines: 0, context, listed: listed?.buffers };
      return new Promise<StreamTallyResult>((resolve, reject) => {
        const thread = startThread({ royaltiesRange: job });
        threads.push(thread);
        let settled = false;
        const settle = (error: Error | null, result?: StreamTallyResult) => {
          if (settled) return;
          settled = true;
          if (error) reject(error);
          else resolve(result!);
        };
        stops.push((reason) => {
          settle(reason);
          void thread.terminate();
        });
        thread.on('message', (message: RangeMessage) => {
          if (message.type === 'progress') onProgress(message.bytes, message.lines);
          else if (message.type === 'done') settle(null, message.result);
          // An error's class does not cross the thread boundary: a bad input stays a BuildInputError.
          else settle(message.inputError ? new BuildInputError(message.message) : new Error(message.message));
        });
        thread.once('error', (error) => settle(error));
        thread.once('exit', (code) =>
          settle(
            new Error(`the streams thread for bytes ${range.start}-${range.end} exited (${code}) before its result`),
          ),
        );
      });
    }),
  );
  // One failing range ends the others: their sums would be of no use.
  results.catch((error: Error) => stops.forEach((stop) => stop(error)));
  return { results, stop: (reason) => stops.forEach((stop) => stop(reason)) };
}

/**
 * A thread that runs this very module: the compiled JavaScript as is; the TypeScript sources (ts-node,
 * jest) through ts-node's transpiler, since a worker thread will not load a `.ts` file by itself.
 */
function startThread(data: { royaltiesRange: RangeJob }): Worker {
  if (!__filename.endsWith('.ts')) return new Worker(__filename, { workerData: data });
  const source = `require('ts-node').register({ transpileOnly: true }); require(${JSON.stringify(__filename)});`;
  return new Worker(source, { eval: true, workerData: data });
}

function runRangeThread(job: RangeJob): void {
  const port = parentPort!;
  let bytes = 0;
  let lines = 0;
  let last = Date.now();
  const users = new RangeUsers(job.listed && SharedUserIndex.from(job.listed));
  tallyRange(
    job,
    (chunkBytes, chunkLines) => {
      bytes += chunkBytes;
      lines += chunkLines;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      port.postMessage({ type: 'progress', bytes, lines } satisfies RangeMessage);
      bytes = 0;
      lines = 0;
    },
    users,
  ).then(
    (result) => {
      port.postMessage({ type: 'progress', bytes, lines } satisfies RangeMessage);
      const transfer = [
        result.userSeconds.buffer,
        result.userStreams.buffer,
        result.labelSeconds.buffer,
      ] as ArrayBuffer[];
      port.postMessage({ type: 'done', result } satisfies RangeMessage, transfer);
    },
    (error: Error) => {
      port.postMessage({
        type: 'failed',
        message: error.message,
        inputError: error instanceof BuildInputError,
      } satisfies RangeMessage);
    },
  );
}

if (!isMainThread && (workerData as { royaltiesRange?: RangeJob } | null)?.royaltiesRange) {
  runRangeThread((workerData as { royaltiesRange: RangeJob }).royaltiesRange);
}
