/** Injection token of the resolved `RoyaltiesSettings`. */
export const ROYALTIES_SETTINGS = Symbol('ROYALTIES_SETTINGS');

/** Job name of a build on the royalties queue; the job id is the build id. */
export const BUILD_JOB = 'build';

export interface BuildJobData {
  buildId: string;
}

/** Injection token of the api's BullMQ `Queue` of builds (a provider, so Bull Board discovers it). */
export const ROYALTIES_QUEUE = Symbol('ROYALTIES_QUEUE');
