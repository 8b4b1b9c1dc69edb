/** Someone asked to cancel the build; the run stops between two chunks and keeps no partial results. */
export class BuildCancelledError extends Error {
  override readonly name = 'BuildCancelledError';
  constructor() {
    super('build cancelled on request');
  }
}
