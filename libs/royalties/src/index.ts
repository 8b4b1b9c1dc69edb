// The royalties capability: streaming consolidation of users, streams and track metadata into label
// payouts, run as a BullMQ job, with the api endpoints that start builds and read their results.
export { RoyaltiesApiModule, RoyaltiesWorkerModule } from './royalties.module';
export { royaltiesEnv, royaltiesSettings } from './royalties.env';
export type { RoyaltiesEnv, RoyaltiesSettings } from './royalties.env';
export { consolidateRoyalties, dayMonthYearToIso } from './consolidation';
export type {
  BuildInputs,
  BuildProgress,
  Consolidation,
  ConsolidationOptions,
  InputProblem,
  LabelPayout,
  RevenueSummary,
} from './consolidation';
export { readTrackMetadata } from './track-metadata';
export type { TrackMetadata, TrackRecord } from './track-metadata';
export { parseFeeCents, splitByLargestRemainder, formatMinorUnits, ORIGIN_REVENUE_PERCENT } from './money';
export { RoyaltiesRepository } from './royalties.repository';
export type { BuildDocument, BuildStatus } from './royalties.repository';
export { RunRoyaltiesBuild } from './run-royalties-build';
export { RoyaltiesService } from './royalties.service';
export { readConsolidatedPage } from './consolidated-entries';
export { BuildCancelledError, BuildInputError, LineTooLongError } from './build-errors';
export { InputUnavailableError } from './input-source';
export { DEFAULT_MAX_LINE_BYTES, InputRefusedError, STRICT_INPUT_POLICY } from './input-policy';
export type { InputPolicy } from './input-policy';
export { writeSyntheticInputs } from './synthetic-inputs';
export type { SyntheticInputSizes, SyntheticInputs } from './synthetic-inputs';
export { ROYALTIES_SETTINGS, BUILD_JOB } from './royalties.tokens';
