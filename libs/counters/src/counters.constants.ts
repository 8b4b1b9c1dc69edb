import { MAX_ID_BYTES } from '@bufferq/buffered-increments';

/** MongoDB collection of the counters: one document `{ _id: key, value }` per key. */
export const COUNTERS_COLLECTION = 'counters';
export const COUNTER_VALUE_FIELD = 'value';

/** Longest counter key in UTF-8 bytes: the buffer's document id limit. */
export const MAX_COUNTER_KEY_BYTES = MAX_ID_BYTES;
/** Most increments in one batch request; larger batches are split by the client. */
export const MAX_INCREMENTS_PER_BATCH = 1_000;
/** `Retry-After` (seconds) of a 503 for a full buffer: room comes back only as flushes write MongoDB. */
export const BUFFER_FULL_RETRY_AFTER_S = 5;
