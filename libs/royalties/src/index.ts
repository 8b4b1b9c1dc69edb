// The royalties capability: streaming consolidation of users, streams and track metadata into label
// payouts, run as a BullMQ job, with the api endpoints that start builds and read their results.
export { RoyaltiesApiModule, RoyaltiesWorkerModule } from './royalties.module';
export { royaltiesEnv } from './royalties.env';
export type { RoyaltiesEnv } from './royalties.env';
export { inputPolicyOf } from './royalties.config';
export { consolidateRoyalties } from './consolidation/consolidate-royalties';
export { dayMonthYearToIso } from './consolidation/stream-line';
export type {
  BuildInputs,
  BuildProgress,
  Consolidation,
  ConsolidationOptions,
  InputProblem,
  LabelPayout,
  RevenueSummary,
} from './consolidation/consolidation';
export { readTrackMetadata } from './inputs/track-metadata';
export type { TrackMetadata, TrackRecord } from './inputs/track-metadata';
export {
  parseFeeCents,
  splitByLargestRemainder,
  formatMinorUnits,
  ORIGIN_REVENUE_PERCENT,
} from './consolidation/money';
export { RoyaltiesRepository } from './storage/royalties.repository';
export type { BuildDocument, BuildStatus } from './storage/royalties.repository';
export { RunRoyaltiesBuild } from './build/run-royalties-build';
export { RoyaltiesService } from './api/royalties.service';
export { readConsolidatedPage } from './storage/consolidated-entries';
export { BuildCancelledError } from './consolidation/build-cancelled-error';
export { BuildInputError, InputRefusedError, InputUnavailableError, LineTooLongError } from './inputs/input-errors';
export { DEFAULT_MAX_LINE_BYTES, STRICT_INPUT_POLICY } from './inputs/input-policy';
export type { InputPolicy } from './inputs/input-policy';
export { writeSyntheticInputs } from './synthetic-inputs';
export type { SyntheticInputSizes, SyntheticInputs } from './synthetic-inputs';
