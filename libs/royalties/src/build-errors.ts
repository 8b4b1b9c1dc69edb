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
