/** The inputs cannot produce a trustworthy report (bad header, too many malformed lines): fail, do not retry. */
export class BuildInputError extends Error {
  override readonly name = 'BuildInputError';
}

/** A line of an input is longer than ROYALTIES_MAX_LINE_BYTES; `line` and `startByte` count from where reading began. */
export class LineTooLongError extends BuildInputError {
  constructor(
    readonly line: number,
    readonly startByte: number,
    readonly maxLineBytes: number,
  ) {
    super(`line ${line} is longer than ${maxLineBytes} bytes (ROYALTIES_MAX_LINE_BYTES)`);
  }
}

/** The policy refuses this input: a clear reason, and no retry (it would be refused again). */
export class InputRefusedError extends Error {
  override readonly name = 'InputRefusedError';
}

/** The input could not be opened or read: a clear message naming it, not a stack from deep inside a stream. */
export class InputUnavailableError extends Error {
  override readonly name = 'InputUnavailableError';
}
