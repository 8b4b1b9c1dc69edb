/**
 * What a chaos run writes and who flushes it, shared by the orchestrator, the producers and the workers
 * so all three agree on collections, namespaces, fields and timings.
 */
import type { BufferedCollection } from '@bufferq/buffered-increments';

export interface BufferTarget {
  collection: string;
  namespace: string;
  /** Short name used in the field names a producer owns for `$set`. */
  tag: string;
}

/**
 * Three buffers on two collections: `shared` is written through two namespaces at once (two buffers,
 * two Redis key sets, two flush schedules), so its documents receive batches from both.
 */
export const BUFFERS: readonly BufferTarget[] = [
  { collection: 'counters', namespace: 'chaos.counters', tag: 'counters' },
  { collection: 'shared', namespace: 'chaos.shared.left', tag: 'left' },
  { collection: 'shared', namespace: 'chaos.shared.right', tag: 'right' },
];

export const COLLECTIONS = [...new Set(BUFFERS.map((buffer) => buffer.collection))];

/** Flush periods of the job schedulers, different per namespace so flushes interleave. */
const FLUSH_INTERVAL_MS: Record<string, number> = {
  'chaos.counters': 300,
  'chaos.shared.left': 400,
  'chaos.shared.right': 500,
};

/**
 * Lease of the buffer's flush lock and lock of the BullMQ flush job. Both bound how long flushing stops
 * after a worker is killed mid-flush (about two of them), and workers are killed every few seconds; both
 * must still outlast one FerretDB bulkWrite and the event-loop stalls of a loaded two-core machine.
 */
export const FLUSH_LOCK_MS = 3_000;

/** What every worker passes to `BufferedIncrementsModule.forWorker`: one entry per namespace. */
export const WORKER_COLLECTIONS: BufferedCollection[] = BUFFERS.map((buffer) => ({
  collection: buffer.collection,
  flushIntervalMs: FLUSH_INTERVAL_MS[buffer.namespace],
  options: { namespace: buffer.namespace, lockLeaseMs: FLUSH_LOCK_MS },
}));

export function flushIntervalOf(namespace: string): number {
  return FLUSH_INTERVAL_MS[namespace];
}

/** `$inc` fields: every producer adds to all of them, through every namespace (a nested one too). */
export const INCREMENT_FIELDS = ['runs', 'items', 'stats.units'] as const;

/** The `$max` field, raised by every producer through every namespace. */
export const MAX_FIELD = 'stats.peak';

/**
 * The `$set` field a producer owns in one namespace. Only its owner sets it, one update at a time, so
 * "the last acknowledged value wins" has a meaning; two owners never race on one field.
 */
export function setFieldOf(producer: number, buffer: BufferTarget): string {
  return `last.p${producer}-${buffer.tag}`;
}

export function documentIdOf(index: number): string {
  return `d${index}`;
}

/** Settings the orchestrator hands to each producer process (as JSON in argv). */
export interface ProducerConfig {
  index: number;
  seed: number;
  /** Redis through the fault proxy. */
  redisUrl: string;
  mongoUrl: string;
  dbName: string;
  documents: number;
  updatesPerSecond: number;
  maxInFlight: number;
}

/** Settings the orchestrator hands to each worker process (as JSON in argv). */
export interface WorkerConfig {
  index: number;
  /** Redis through the fault proxy, for the buffer and for BullMQ alike. */
  redisUrl: string;
  mongoUrl: string;
  dbName: string;
}

/** Messages between the orchestrator and its children (Node IPC). */
export type ChildMessage = { type: 'ready' } | { type: 'ledger'; ledger: import('./ledger').LedgerData };
export type ParentMessage = { type: 'stop' };
