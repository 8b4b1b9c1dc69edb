/** Bad input to increment/max/min/set: nothing was buffered. The message names the argument. */
export class InvalidUpdateError extends TypeError {
  override readonly name = 'InvalidUpdateError';
}

/** Redis is not connected or rejected the write: the update was not buffered. */
export class BufferUnavailableError extends Error {
  override readonly name: string = 'BufferUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The flush lost its lock (it ran past its lease); another flusher owns the batch now. */
export class FlushLockLostError extends Error {
  override readonly name = 'FlushLockLostError';
}

/** The buffer holds its limit of fields (MongoDB has been away for long): the update was not buffered. */
export class BufferFullError extends BufferUnavailableError {
  override readonly name = 'BufferFullError';
}

/** Redis could not confirm a claimed batch as durable in time; nothing was written to MongoDB. */
export class ClaimNotDurableError extends Error {
  override readonly name = 'ClaimNotDurableError';
}

/**
 * A flush's MongoDB call got no answer within the flush lock's lease: its connection may have gone silent
 * (a NAT or firewall dropped the flow while the driver's monitor, on a connection of its own, still sees
 * the server). The flush fails and is tried again on another connection; with markers, a write that lands
 * later changes nothing.
 */
export class MongoCallTimeoutError extends Error {
  override readonly name = 'MongoCallTimeoutError';
}
