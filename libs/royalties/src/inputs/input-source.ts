import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline, Readable, Transform } from 'node:stream';
import { Agent, Dispatcher, request } from 'undici';
import { READ_CHUNK_BYTES } from './csv-lines';
import { InputRefusedError, InputUnavailableError } from './input-errors';
import { InputPolicy, inputLookup, isUrlLocation, realLocalPath, urlRefusal } from './input-policy';

/** An input the royalties build reads: a local path or an http(s) URL. */
export interface OpenedInput {
  stream: Readable;
  /** Bytes from the start of the input to its end, when known (file size, Content-Length). */
  sizeBytes: number | null;
  /** Last modification of a local file, so readers can tell the file changed since a build. */
  modifiedMs: number | null;
  /** The file read, symlinks resolved (local inputs only): later reads of the same input open this one. */
  path: string | null;
}

export interface OpenInputOptions {
  /** Start reading here (pages of a streams file). */
  startByte?: number;
  /** How the input is named in errors, e.g. `streams CSV`. */
  what?: string;
  /** How long a URL may take to answer (its headers; a big body may take as long as it needs). */
  responseTimeoutMs?: number;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Opens an input for streaming, optionally from a byte offset (used to page through a streams file),
 * if the policy allows it: a local path must lie inside the input root (symlinks followed), a URL must
 * reach a public address (or an allow-listed host) on every hop. Refusals throw InputRefusedError.
 */
export async function openInput(
  location: string,
  policy: InputPolicy,
  options: OpenInputOptions = {},
): Promise<OpenedInput> {
  const what = options.what ?? 'input';
  if (isUrlLocation(location)) return fetchInput(location, policy, what, options);
  let real: Awaited<ReturnType<typeof realLocalPath>>;
  try {
    real = await realLocalPath(location, policy);
    if ('path' in real) {
      const info = await stat(real.path);
      if (!info.isFile()) throw new Error('not a regular file');
      const stream = createReadStream(real.path, {
        start: options.startByte ?? 0,
        highWaterMark: READ_CHUNK_BYTES,
      });
      return { stream, sizeBytes: info.size, modifiedMs: info.mtimeMs, path: real.path };
    }
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new InputUnavailableError(`${what}: cannot read ${location}: ${reason}`);
  }
  throw new InputRefusedError(`${what}: ${real.refused}`);
}

/**
 * GETs a URL through the policy: every hop's URL is checked before it is requested and every connection's
 * addresses when it is made; redirects are followed by hand (at most MAX_REDIRECTS) so each is checked
 * the same way. A Range header asks for the bytes from `startByte`; a server that ignores it has the
 * first bytes skipped here. Errors name the input and the URL the client gave, never response bytes.
 */
async function fetchInput(
  location: string,
  policy: InputPolicy,
  what: string,
  options: OpenInputOptions,
): Promise<OpenedInput> {
  const startByte = options.startByte ?? 0;
  const timeoutMs = options.responseTimeoutMs ?? 30_000;
  // One agent per input: its connections close with the input (no pool outlives a build or a page).
  const agent = new Agent({
    connect: { lookup: inputLookup(policy) as never, timeout: timeoutMs },
    bodyTimeout: 0,
  });
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
  const fail = (error: Error): never => {
    void agent.destroy();
    throw error;
  };
  let url = location;
  let response: Dispatcher.ResponseData | undefined;
  try {
    for (let redirects = 0; ; redirects++) {
      const refusal = urlRefusal(url, policy);
      if (refusal)
        fail(
          new InputRefusedError(
            `${what}: cannot fetch ${location}: ${url === location ? '' : `redirected to ${new URL(url).origin}: `}${refusal}`,
          ),
        );
      try {
        response = await request(url, {
          dispatcher: agent,
          headers: startByte > 0 ? { range: `bytes=${startByte}-` } : {},
          signal: controller.signal,
        });
      } catch (error) {
        const forbidden = forbiddenCause(error as Error);
        if (forbidden) fail(new InputRefusedError(`${what}: cannot fetch ${location}: ${forbidden}`));
        const reason = controller.signal.aborted
          ? (controller.signal.reason as Error).message
          : ((error as NodeJS.ErrnoException).code ?? (error as Error).message);
        fail(new InputUnavailableError(`${what}: cannot fetch ${location}: ${reason}`));
      }
      const { statusCode, headers, body } = response!;
      // undici reports a body destroyed before its end as an error; readers that stop early (a page, a
      // failed header) destroy it on purpose. Their own reads still see real errors.
      body.on('error', () => undefined);
      if (!REDIRECT_STATUSES.has(statusCode) || headers.location === undefined) break;
      body.destroy();
      if (redirects === MAX_REDIRECTS)
        fail(new InputUnavailableError(`${what}: cannot fetch ${location}: more than ${MAX_REDIRECTS} redirects`));
      const next = new URL(String(headers.location), url);
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        fail(
          new InputRefusedError(`${what}: cannot fetch ${location}: redirect to a location that is not an http(s) URL`),
        );
      url = next.href;
    }
  } finally {
    clearTimeout(timer);
  }
  const { statusCode, headers, body } = response!;
  if (statusCode < 200 || statusCode > 299) {
    body.destroy();
    fail(
      new InputUnavailableError(
        `${what}: GET ${location} answered ${statusCode}${REDIRECT_STATUSES.has(statusCode) ? ' without a Location' : ''}`,
      ),
    );
  }
  body.once('close', () => void agent.destroy());
  const length = Number(headers['content-length'] ?? NaN);
  let sizeBytes = Number.isFinite(length) ? length : null;
  let stream: Readable = body;
  if (statusCode === 206) {
    sizeBytes = sizeBytes === null ? null : sizeBytes + startByte;
  } else if (startByte > 0) {
    // pipeline: destroying the page reader's stream also ends the response.
    stream = pipeline(body, skipBytes(startByte), () => undefined);
  }
  return { stream, sizeBytes, modifiedMs: null, path: null };
}

/** The refusal of the connect-time address check, wherever undici wrapped it. */
function forbiddenCause(error: Error): string | undefined {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause.name === 'ForbiddenTargetError') return cause.message;
  }
  return undefined;
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
