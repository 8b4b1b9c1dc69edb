import { AnyBulkWriteOperation, Collection, Document, MongoBulkWriteError } from 'mongodb';
import { BufferedField, decodeField, DocumentId, OPERATOR } from './buffered-field';
import { decodeComparable, decodeIncrement, decodeSetValue } from './buffered-value';

export interface BatchApplierOptions {
  /** Create missing documents (default) or only update existing ones. */
  upsert: boolean;
  /** Field holding the last applied batch marker in each touched document; false turns the marker off. */
  marker: string | false;
  /** Upper bound on operations per bulkWrite call; when absent, chosen for the server (see below). */
  writeChunkSize?: number;
}

/** Operations per bulkWrite on MongoDB. */
export const DEFAULT_WRITE_CHUNK_SIZE = 1_000;
/**
 * FerretDB 1.24 (SQLite) hangs on an `update` command of 100 or more statements that match existing
 * documents (it holds a pooled connection per statement until the command ends), so on FerretDB the
 * default stays well below that.
 */
export const FERRETDB_WRITE_CHUNK_SIZE = 50;

/** An update MongoDB refused for good (e.g. `$inc` on a string): set aside instead of blocking the buffer. */
export interface DeadLetter {
  batchId: string;
  documentId: DocumentId;
  fields: Record<string, string>;
  error: string;
}

export interface ApplyResult {
  documents: number;
  fields: number;
  deadLetters: DeadLetter[];
}

/** Phases of one document's updates when its operators touch overlapping paths; also the marker offset. */
const PHASES = ['set', 'max', 'min', 'inc'] as const;
type Phase = (typeof PHASES)[number];
const PHASE_OF: Record<string, Phase> = {
  [OPERATOR.set]: 'set',
  [OPERATOR.max]: 'max',
  [OPERATOR.min]: 'min',
  [OPERATOR.incInteger]: 'inc',
  [OPERATOR.incDecimal]: 'inc',
};
const MONGO_OPERATOR: Record<Phase, string> = { set: '$set', max: '$max', min: '$min', inc: '$inc' };
const DUPLICATE_KEY = 11000;

interface DocumentBatch {
  documentId: DocumentId;
  raw: Record<string, string>;
  paths: Record<Phase, Map<string, unknown>>;
  integerSums: Map<string, string>;
  decimalSums: Map<string, string>;
}

interface PlannedUpdate {
  document: DocumentBatch;
  operation: AnyBulkWriteOperation<Document>;
}

/**
 * Writes one drained batch to MongoDB: one update per document (all its fields together), unordered
 * bulkWrites. With the marker on, each update only matches a document whose marker is below this
 * batch's, and sets it; re-applying a batch after a crash therefore changes nothing it already changed.
 * An upsert that finds the marker already set collides with the existing `_id` (E11000): that is the
 * "already applied" answer, not an error.
 */
export class BatchApplier {
  private writeChunkSize?: Promise<number>;

  constructor(
    private readonly collection: Collection<Document>,
    private readonly options: BatchApplierOptions,
  ) {
    if (options.writeChunkSize) this.writeChunkSize = Promise.resolve(options.writeChunkSize);
  }

  async apply(batchId: string, entries: Iterable<[string, string]>, keepAlive: () => Promise<void>): Promise<ApplyResult> {
    const documents = groupByDocument(entries);
    const rounds = this.planRounds(BigInt(batchId), documents.values());
    const deadLetters: DeadLetter[] = [];
    this.writeChunkSize ??= this.chunkSizeForServer().catch((error) => {
      this.writeChunkSize = undefined; // ask again next flush (MongoDB may be down right now)
      throw error;
    });
    const chunkSize = await this.writeChunkSize;
    for (const round of rounds) {
      for (let start = 0; start < round.length; start += chunkSize) {
        await keepAlive();
        const chunk = round.slice(start, start + chunkSize);
        deadLetters.push(...(await this.write(batchId, chunk)));
      }
    }
    let fields = 0;
    for (const document of documents.values()) fields += Object.keys(document.raw).length;
    return { documents: documents.size, fields, deadLetters };
  }

  private async chunkSizeForServer(): Promise<number> {
    const info = await this.collection.db.admin().command({ buildInfo: 1 });
    return 'ferretdbVersion' in info ? FERRETDB_WRITE_CHUNK_SIZE : DEFAULT_WRITE_CHUNK_SIZE;
  }

  /**
   * Round r holds every document's r-th update. A document needs more than one update only when two
   * operators touch the same or nested paths; then it gets one update per operator, in the order
   * $set, $max, $min, $inc, each with a higher marker, and rounds run one after the other.
   */
  private planRounds(batchId: bigint, documents: Iterable<DocumentBatch>): PlannedUpdate[][] {
    const rounds: PlannedUpdate[][] = [];
    for (const document of documents) {
      const phases = PHASES.filter((phase) => document.paths[phase].size > 0);
      const groups = hasCrossOperatorConflict(document, phases) ? phases.map((phase) => [phase]) : [phases];
      groups.forEach((group, index) => {
        const marker = batchId * 4n + BigInt(PHASES.indexOf(group[group.length - 1]));
        (rounds[index] ??= []).push({ document, operation: this.updateFor(document, group, Number(marker)) });
      });
    }
    return rounds;
  }

  private updateFor(document: DocumentBatch, phases: Phase[], marker: number): AnyBulkWriteOperation<Document> {
    const update: Record<string, Record<string, unknown>> = {};
    for (const phase of phases) update[MONGO_OPERATOR[phase]] = Object.fromEntries(document.paths[phase]);
    const filter: Document = { _id: document.documentId };
    if (this.options.marker) {
      filter[this.options.marker] = { $not: { $gte: marker } };
      update.$set = { ...update.$set, [this.options.marker]: marker };
    }
    return { updateOne: { filter, update, upsert: this.options.upsert } };
  }

  /**
   * One unordered bulkWrite. Updates MongoDB refuses for good become dead letters. Some servers
   * (FerretDB) stop an unordered bulk at its first error, so with the marker on, the updates that did
   * not fail are sent again until a round has no error: the marker turns those already applied into
   * no-ops. Each round drops at least one failed update, so this ends.
   */
  private async write(batchId: string, chunk: PlannedUpdate[]): Promise<DeadLetter[]> {
    const deadLetters: DeadLetter[] = [];
    let pending = chunk;
    while (pending.length > 0) {
      try {
        await this.collection.bulkWrite(
          pending.map((planned) => planned.operation),
          { ordered: false },
        );
        return deadLetters;
      } catch (error) {
        if (!(error instanceof MongoBulkWriteError) || error.writeConcernError) throw error;
        const writeErrors = Array.isArray(error.writeErrors) ? error.writeErrors : [error.writeErrors];
        if (writeErrors.length === 0) throw error;
        const failed = new Set<number>();
        for (const writeError of writeErrors) {
          failed.add(writeError.index);
          if (writeError.code === DUPLICATE_KEY && this.options.marker && this.options.upsert) continue;
          const { document } = pending[writeError.index];
          deadLetters.push({ batchId, documentId: document.documentId, fields: document.raw, error: writeError.errmsg ?? String(writeError.code) });
        }
        const processed = error.result.matchedCount + error.result.upsertedCount + failed.size;
        if (!this.options.marker || processed >= pending.length) return deadLetters;
        pending = pending.filter((_, index) => !failed.has(index));
      }
    }
    return deadLetters;
  }
}

function groupByDocument(entries: Iterable<[string, string]>): Map<string, DocumentBatch> {
  const documents = new Map<string, DocumentBatch>();
  for (const [name, value] of entries) {
    if (name.startsWith('#')) continue;
    const field: BufferedField = decodeField(name);
    let document = documents.get(field.documentKey);
    if (!document) {
      document = {
        documentId: field.documentId,
        raw: {},
        paths: { set: new Map(), max: new Map(), min: new Map(), inc: new Map() },
        integerSums: new Map(),
        decimalSums: new Map(),
      };
      documents.set(field.documentKey, document);
    }
    document.raw[name] = value;
    switch (field.operator) {
      case OPERATOR.incInteger:
        document.integerSums.set(field.fieldPath, value);
        break;
      case OPERATOR.incDecimal:
        document.decimalSums.set(field.fieldPath, value);
        break;
      case OPERATOR.max:
      case OPERATOR.min:
        document.paths[PHASE_OF[field.operator]].set(field.fieldPath, decodeComparable(value));
        break;
      case OPERATOR.set:
        document.paths.set.set(field.fieldPath, decodeSetValue(value));
        break;
    }
  }
  for (const document of documents.values()) {
    for (const path of new Set([...document.integerSums.keys(), ...document.decimalSums.keys()])) {
      document.paths.inc.set(path, decodeIncrement(document.integerSums.get(path), document.decimalSums.get(path)));
    }
  }
  return documents;
}

/** True when two different operators touch the same path, or one's path lies inside the other's. */
function hasCrossOperatorConflict(document: DocumentBatch, phases: Phase[]): boolean {
  if (phases.length < 2) return false;
  const exact = new Map<string, Phase>();
  const enclosing = new Map<string, Set<Phase>>();
  for (const phase of phases) {
    for (const path of document.paths[phase].keys()) {
      const other = (owner: Phase | undefined) => owner !== undefined && owner !== phase;
      if (other(exact.get(path))) return true;
      if ([...(enclosing.get(path) ?? [])].some(other)) return true;
      const segments = path.split('.');
      for (let depth = 1; depth < segments.length; depth++) {
        const prefix = segments.slice(0, depth).join('.');
        if (other(exact.get(prefix))) return true;
        enclosing.set(prefix, (enclosing.get(prefix) ?? new Set()).add(phase));
      }
      exact.set(path, phase);
    }
  }
  return false;
}
