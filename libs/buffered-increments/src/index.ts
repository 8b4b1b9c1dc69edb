export { BufferedMongoIncrements } from './buffered-mongo-increments';
export type { BufferedMongoIncrementsOptions, FlushReport, BufferStats } from './buffered-mongo-increments';
export type { DocumentId } from './buffered-field';
export { MAX_ID_BYTES, MAX_FIELD_PATH_BYTES } from './buffered-field';
export { MAX_SET_VALUE_BYTES } from './buffered-value';
export type { DeadLetter } from './batch-applier';
export { BufferUnavailableError, FlushLockLostError, InvalidUpdateError } from './errors';
