import {
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
  MongoWriteConcernError,
} from 'mongodb';
import { MongoCallTimeoutError } from './errors';

/** Server codes that say "not now" (no primary, shutting down, write concern), never "not this update". */
const TRANSIENT_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
  64, // WriteConcernFailed
  50, // MaxTimeMSExpired
]);

const TRANSIENT_LABELS = [
  'RetryableWriteError',
  'RetryableError',
  'SystemOverloadedError',
  'TransientTransactionError',
];

/**
 * True when MongoDB could not take the write right now (away, failing over, write concern not met):
 * the batch stays in Redis and is tried again. False for errors about the update itself.
 */
export function isTransientMongoError(error: unknown): boolean {
  if (
    error instanceof MongoCallTimeoutError ||
    error instanceof MongoNetworkError ||
    error instanceof MongoServerSelectionError ||
    error instanceof MongoNotConnectedError ||
    error instanceof MongoTopologyClosedError ||
    error instanceof MongoWriteConcernError
  ) {
    return true;
  }
  if (!(error instanceof MongoError)) return false;
  // A bulkWrite that could not reach the server wraps the network error (driver 6+).
  const wrapped = (error as { errorResponse?: unknown }).errorResponse ?? error.cause;
  if (wrapped instanceof Error && wrapped !== error && isTransientMongoError(wrapped)) return true;
  if (TRANSIENT_LABELS.some((label) => error.hasErrorLabel(label))) return true;
  if ((error as { writeConcernError?: unknown }).writeConcernError) return true;
  return typeof error.code === 'number' && TRANSIENT_CODES.has(error.code);
}

/**
 * `call`, or MongoCallTimeoutError once `timeoutMs` passed without its answer: the call is abandoned. The
 * driver has no working per-call timeout (driver 7 dropped `timeoutMS`), and a call on a connection gone
 * silent would wait until the operating system gives the connection up, minutes or never.
 */
export function answeredWithin<T>(call: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new MongoCallTimeoutError(`MongoDB did not answer ${what} within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  // An abandoned call may still fail later: nobody waits for it any more.
  call.catch(() => undefined);
  return Promise.race([call, timedOut]).finally(() => clearTimeout(timer));
}
