/** The inputs cannot produce a trustworthy report (bad header, too many malformed lines): fail, do not retry. */
export class BuildInputError extends Error {
  override readonly name = 'BuildInputError';
}

/** Someone asked to cancel the build; the run stops between two chunks and keeps no partial results. */
export class BuildCancelledError extends Error {
  override readonly name = 'BuildCancelledError';
  constructor() {
    super('build cancelled on request');
  }
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
