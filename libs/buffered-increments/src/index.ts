export { BufferedMongoIncrements } from './buffered-mongo-increments';
export type { BufferedMongoIncrementsOptions, FlushReport, BufferStats } from './buffered-mongo-increments';
export type { DocumentId } from './buffered-field';
export { MAX_ID_BYTES, MAX_FIELD_PATH_BYTES } from './buffered-field';
export { MAX_SET_VALUE_BYTES } from './buffered-value';
export type { DeadLetter } from './batch-applier';
export {
  BufferFullError,
  BufferUnavailableError,
  ClaimNotDurableError,
  FlushLockLostError,
  InvalidUpdateError,
  MongoCallTimeoutError,
} from './errors';
export { BufferedIncrementsModule } from './buffered-increments.module';
export type {
  BufferedCollection,
  BufferedIncrementsRootOptions,
  BufferedIncrementsRootAsyncOptions,
  BufferedIncrementsWorkerOptions,
} from './buffered-increments.options';
export { InjectBufferedIncrements } from './inject-buffered-increments.decorator';
export { bufferedIncrementsToken, FLUSH_QUEUE, BUFFERED_INCREMENTS_FLUSHERS } from './buffered-increments.constants';
export { flushSchedulerId } from './flush-schedule';
export type { RedisLike } from '@bufferq/redis-scripts';
