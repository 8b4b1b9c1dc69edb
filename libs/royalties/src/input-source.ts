import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { READ_CHUNK_BYTES } from './csv-lines';

/** An input the royalties build reads: a local path or an http(s) URL. */
export interface OpenedInput {
  stream: Readable;
  /** Bytes from the start of the input to its end, when known (file size, Content-Length). */
  sizeBytes: number | null;
  /** Last modification of a local file, so readers can tell the file changed since a build. */
  modifiedMs: number | null;
}

/** The input could not be opened or read: a clear message naming it, not a stack from deep inside a stream. */
export class InputUnavailableError extends Error {
  override readonly name = 'InputUnavailableError';
}

export function isUrlLocation(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** Whether a local path stays inside `root` (always true for URLs or without a root). */
export function isAllowedLocation(location: string, root: string | undefined): boolean {
  if (!root || isUrlLocation(location)) return true;
  const rel = relative(resolve(root), resolve(root, location));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The location a build stores: URLs as given, local paths absolute (against the root when set), so the worker's cwd does not matter. */
export function resolveLocation(location: string, root: string | undefined): string {
  return isUrlLocation(location) ? location : resolve(root ?? process.cwd(), location);
}

/**
 * Opens an input for streaming, optionally from a byte offset (used to page through a streams file).
 * URLs are fetched with a Range header; a server that ignores it gets its first bytes skipped here.
 */
export async function openInput(location: string, options: { startByte?: number; what?: string; responseTimeoutMs?: number } = {}): Promise<OpenedInput> {
  const startByte = options.startByte ?? 0;
  const what = options.what ?? 'input';
  if (isUrlLocation(location)) {
    let response: Response;
    // Bounds the wait for the response head only: a big body may take as long as it needs.
    const controller = new AbortController();
    const timeoutMs = options.responseTimeoutMs ?? 30_000;
    const timer = setTimeout(() => controller.abort(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    try {
      response = await fetch(location, { headers: startByte > 0 ? { range: `bytes=${startByte}-` } : {}, signal: controller.signal });
    } catch (error) {
      const reason = controller.signal.aborted ? (controller.signal.reason as Error).message : ((error as Error).cause ?? (error as Error).message);
      throw new InputUnavailableError(`${what}: cannot fetch ${location}: ${reason}`);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw new InputUnavailableError(`${what}: GET ${location} answered ${response.status}`);
    }
    const length = Number(response.headers.get('content-length') ?? NaN);
    let stream = Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>);
    let sizeBytes = Number.isFinite(length) ? length : null;
    if (response.status === 206) {
      sizeBytes = sizeBytes === null ? null : sizeBytes + startByte;
    } else if (startByte > 0) {
      stream = stream.pipe(skipBytes(startByte));
    }
    return { stream, sizeBytes, modifiedMs: null };
  }
  try {
    const info = await stat(location);
    if (!info.isFile()) throw new Error('not a regular file');
    return { stream: createReadStream(location, { start: startByte, highWaterMark: READ_CHUNK_BYTES }), sizeBytes: info.size, modifiedMs: info.mtimeMs };
  } catch (error) {
    throw new InputUnavailableError(`${what}: cannot read ${location}: ${(error as Error).message}`);
  }
}

function skipBytes(count: number): Transform {
  let remaining = count;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (remaining >= chunk.length) {
        remaining -= chunk.length;
        return callback();
      }
      const rest = chunk.subarray(remaining);
      remaining = 0;
      callback(null, rest);
    },
  });
}
