/** Bad input to increment/max/min/set: nothing was buffered. The message names the argument. */
export class InvalidUpdateError extends TypeError {
  override readonly name = 'InvalidUpdateError';
}

/** Redis is not connected or rejected the write: the update was not buffered. */
export class BufferUnavailableError extends Error {
  override readonly name = 'BufferUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The flush lost its lock (it ran past its lease); another flusher owns the batch now. */
export class FlushLockLostError extends Error {
  override readonly name = 'FlushLockLostError';
}
