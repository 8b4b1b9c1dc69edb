// The royalties capability: streaming consolidation of users, streams and track metadata into label
// payouts, run as a BullMQ job, with the api endpoints that start builds and read their results.
export { RoyaltiesApiModule, RoyaltiesWorkerModule } from './royalties.module';
export { royaltiesEnv } from './royalties.env';
export { inputPolicyOf } from './royalties.config';
export { consolidateRoyalties } from './consolidation/consolidate-royalties';
