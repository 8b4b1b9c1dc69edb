import {
  AnyBulkWriteOperation,
  Collection,
  Document,
  MongoBulkWriteError,
  MongoServerError,
  WriteConcern,
} from 'mongodb';
import { DocumentId } from './buffered-field';
import { completeMarker, legacyCompleteMarker, ROUNDS_PER_BATCH } from './buffer-keys';
import { DocumentBatch, groupByDocument } from './document-batch';
import { numberAtPath } from './document-path';
import { answeredWithin, isTransientMongoError } from './mongo-errors';
import { planRounds, PlannedItem } from './update-rounds';

export interface BatchApplierOptions {
  /** Create missing documents (default) or only update existing ones. */
  upsert: boolean;
  /** Field holding, per buffer scope, the last applied batch round of each document; false turns markers off. */
  marker: string | false;
  /** Field of the one-number-per-document marker older versions wrote; read for their batches only. */
  legacyMarker: string;
  /** Upper bound on operations per bulkWrite call; when absent, chosen for the server (see below). */
  writeChunkSize?: number;
  /** Write concern of every bulkWrite; default: the collection's. */
  writeConcern?: WriteConcern;
  /**
   * A flush's MongoDB call not answered this long is abandoned and the flush fails (it is tried again):
   * the flush lock's lease, which lapses in that time anyway while the call waits.
   */
  callTimeoutMs: number;
}

/** A batch as the claim handed it over. */
export interface ClaimedBatch {
  id: string;
  /** This buffer's name inside each document's markers. */
  scope: string;
  /** 2: markers scoped to the buffer; 1: cut by a version with one marker per document. */
  format: number;
  entries: Iterable<[string, string]>;
}

/** Operations per bulkWrite on MongoDB. */
export const DEFAULT_WRITE_CHUNK_SIZE = 1_000;
/**
 * FerretDB 1.24 (SQLite) hangs on an `update` command of 100 or more statements that match existing
 * documents (it holds a pooled connection per statement until the command ends), so on FerretDB the
 * default stays well below that.
 */
export const FERRETDB_WRITE_CHUNK_SIZE = 50;
/** Times one update that fails on its own is tried before it is set aside. */
const POISON_ATTEMPTS = 3;

/** An update MongoDB refused for good (e.g. `$inc` on a string): set aside instead of blocking the buffer. */
export interface DeadLetter {
  batchId: string;
  /** The document's id as text (an ObjectId as its hex string). */
  documentId: string;
  /** Buffered field names and values, as `replayDeadLetters` puts them back. */
  fields: Record<string, string>;
  error: string;
}

export interface ApplyResult {
  documents: number;
  fields: number;
  deadLetters: DeadLetter[];
}

interface PlannedUpdate {
  document: DocumentBatch;
  marker: number;
  fields: Record<string, string>;
  operation: AnyBulkWriteOperation<Document>;
}

/**
 * Writes one drained batch to MongoDB: one update per document and round (a document needs more than
 * one round only when its paths conflict), unordered bulkWrites. With markers on, each update only
 * matches a document whose marker for this buffer is below the update's, and sets it; re-applying a
 * batch after a crash therefore changes nothing it already changed, and other buffers writing the same
 * document keep markers of their own.
 */
export class BatchApplier {
  private writeChunkSize?: Promise<number>;

  constructor(
    private readonly collection: Collection<Document>,
    private readonly options: BatchApplierOptions,
  ) {
    if (options.writeChunkSize) this.writeChunkSize = Promise.resolve(options.writeChunkSize);
  }

  /** Asks the server once which write chunk size suits it; a failure is asked again next time. */
  chunkSize(): Promise<number> {
    this.writeChunkSize ??= this.chunkSizeForServer().catch((error) => {
      this.writeChunkSize = undefined; // ask again next flush (MongoDB may be down right now)
      throw error;
    });
    return this.writeChunkSize;
  }

  /**
   * Applies the batch. `onDeadLetters` records refused updates as soon as their chunk is written, so
   * a crash later in the batch cannot forget them.
   */
  async apply(
    batch: ClaimedBatch,
    keepAlive: () => Promise<void>,
    onDeadLetters: (letters: DeadLetter[]) => Promise<void>,
  ): Promise<ApplyResult> {
    const documents = groupByDocument(batch.entries);
    const rounds: PlannedUpdate[][] = [];
    const deadLetters: DeadLetter[] = [];
    for (const document of documents.values()) {
      const planned = planRounds(document, ROUNDS_PER_BATCH - 1);
      planned.rounds.forEach((items, round) => {
        const last = round === planned.rounds.length - 1;
        const marker = last
          ? completeMarker(batch.id)
          : Number(BigInt(batch.id) * BigInt(ROUNDS_PER_BATCH) + BigInt(round));
        (rounds[round] ??= []).push(this.plan(batch, document, items, marker));
      });
      if (planned.overflow.length)
        deadLetters.push(
          letterOf(
            batch.id,
            document,
            planned.overflow.map((item) => fieldsOf(document, item)),
            'too many conflicting paths in one document for one batch',
          ),
        );
    }
    if (deadLetters.length) await onDeadLetters(deadLetters);
    const chunkSize = await this.chunkSize();
    for (const round of rounds) {
      for (let start = 0; start < round.length; start += chunkSize) {
        await keepAlive();
        const refused = await this.write(batch, round.slice(start, start + chunkSize));
        if (refused.length) await onDeadLetters(refused);
        deadLetters.push(...refused);
      }
    }
    let fields = 0;
    for (const document of documents.values()) fields += Object.keys(document.raw).length;
    return { documents: documents.size, fields, deadLetters };
  }

  /**
   * Creates the collection if it does not exist yet, so the first flush does not pay for it (creating
   * a collection on first write takes tens of milliseconds). Another creator winning the race is fine.
   */
  prepareCollection(): Promise<void> {
    // Bounded: flushes wait for it (see BufferedMongoIncrements.warmUp).
    return this.answered(this.createIfMissing(), 'creating the collection');
  }

  private async createIfMissing(): Promise<void> {
    const { db, collectionName } = this.collection;
    if (await db.listCollections({ name: collectionName }, { nameOnly: true }).hasNext()) return;
    await db.createCollection(collectionName).catch((error: unknown) => {
      if (!(error instanceof MongoServerError && error.code === NAMESPACE_EXISTS)) throw error;
    });
  }

  private async chunkSizeForServer(): Promise<number> {
    const info = await this.answered(this.collection.db.admin().command({ buildInfo: 1 }), 'buildInfo');
    return 'ferretdbVersion' in info ? FERRETDB_WRITE_CHUNK_SIZE : DEFAULT_WRITE_CHUNK_SIZE;
  }

  private markerPath(scope: string): string | undefined {
    return this.options.marker ? `${this.options.marker}.${scope}` : undefined;
  }

  private plan(batch: ClaimedBatch, document: DocumentBatch, items: PlannedItem[], marker: number): PlannedUpdate {
    const update: Record<string, Record<string, unknown>> = {};
    const fields: Record<string, string> = {};
    for (const item of items) {
      (update[item.mongoOperator] ??= {})[item.path] = item.value;
      Object.assign(fields, fieldsOf(document, item));
    }
    const filter: Document = { _id: document.documentId };
    const markerPath = this.markerPath(batch.scope);
    if (markerPath) {
      filter[markerPath] = { $not: { $gte: marker } };
      // A batch cut before markers were scoped: its updates the old marker shows as applied are skipped.
      if (batch.format < 2) filter[this.options.legacyMarker] = { $not: { $gte: legacyCompleteMarker(batch.id) } };
      update.$set = { ...update.$set, [markerPath]: marker };
    }
    return { document, marker, fields, operation: { updateOne: { filter, update, upsert: this.options.upsert } } };
  }

  /**
   * One unordered bulkWrite. MongoDB being away throws (the batch stays in Redis). When some updates
   * fail, each update of the chunk is written alone: which ones failed is then beyond doubt (FerretDB
   * stops an unordered bulk at its first error and reports it at the wrong index), and with markers the
   * updates that were applied already are no-ops. What MongoDB refuses for good becomes a dead letter.
   */
  private async write(batch: ClaimedBatch, chunk: PlannedUpdate[]): Promise<DeadLetter[]> {
    try {
      await this.answered(
        this.collection.bulkWrite(
          chunk.map((planned) => planned.operation),
          { ordered: false, ...this.writeOptions() },
        ),
        'a bulkWrite',
      );
      return [];
    } catch (error) {
      if (isTransientMongoError(error)) throw error;
      if (!this.options.marker) {
        // Without markers an update cannot be sent twice safely: trust the server's report as it is.
        const writeErrors = error instanceof MongoBulkWriteError ? bulkWriteErrors(error) : [];
        if (writeErrors.length === 0) throw error;
        return writeErrors.map(({ index, errmsg, code }) =>
          letterOf(batch.id, chunk[index].document, [chunk[index].fields], errmsg ?? String(code)),
        );
      }
      const deadLetters: DeadLetter[] = [];
      for (const planned of chunk) deadLetters.push(...(await this.writeAlone(batch, planned)));
      return deadLetters;
    }
  }

  /**
   * One update alone, tried a few times; what MongoDB still refuses becomes a dead letter. A duplicate
   * key counts as "already applied" only when the collision is on `_id` and that document shows this
   * buffer's marker at or past the update's; a document another writer inserted between our match and
   * our insert gets the update again (it matches now); a secondary unique index refuses for good.
   */
  private async writeAlone(batch: ClaimedBatch, planned: PlannedUpdate): Promise<DeadLetter[]> {
    let reason = 'refused';
    for (let attempt = 1; attempt <= POISON_ATTEMPTS; attempt++) {
      try {
        await this.answered(
          this.collection.bulkWrite([planned.operation], { ordered: true, ...this.writeOptions() }),
          'a bulkWrite',
        );
        return [];
      } catch (error) {
        if (isTransientMongoError(error)) throw error;
        const [writeError] = error instanceof MongoBulkWriteError ? bulkWriteErrors(error) : [];
        reason = writeError?.errmsg ?? (error instanceof Error ? error.message : String(error));
        const code = writeError?.code ?? (error instanceof MongoServerError ? error.code : undefined);
        if (code === DUPLICATE_KEY && this.options.upsert) {
          const markerPath = this.markerPath(batch.scope)!;
          const existing = await this.answered(
            this.collection.findOne({ _id: planned.document.documentId as never }, { projection: { [markerPath]: 1 } }),
            'a findOne',
          );
          if (existing && Number(numberAtPath(existing, markerPath)) >= planned.marker) return [];
          if (!existing) break; // not an _id collision: a secondary unique index refused the insert
        }
      }
    }
    return [letterOf(batch.id, planned.document, [planned.fields], reason)];
  }

  private answered<T>(call: Promise<T>, what: string): Promise<T> {
    return answeredWithin(call, this.options.callTimeoutMs, `${what} of ${this.collection.collectionName}`);
  }

  private writeOptions(): { writeConcern?: WriteConcern } {
    return this.options.writeConcern ? { writeConcern: this.options.writeConcern } : {};
  }
}

const DUPLICATE_KEY = 11000;
const NAMESPACE_EXISTS = 48;

function bulkWriteErrors(error: MongoBulkWriteError): Array<{ index: number; code: number; errmsg?: string }> {
  const errors = error.writeErrors as unknown;
  if (Array.isArray(errors)) return errors;
  return errors ? [errors as { index: number; code: number; errmsg?: string }] : [];
}

function fieldsOf(document: DocumentBatch, item: PlannedItem): Record<string, string> {
  return Object.fromEntries(item.fields.map((name) => [name, document.raw[name]]));
}

function letterOf(
  batchId: string,
  document: DocumentBatch,
  fieldSets: Array<Record<string, string>>,
  error: string,
): DeadLetter {
  return {
    batchId,
    documentId: String(document.documentId as DocumentId),
    fields: Object.assign({}, ...fieldSets),
    error,
  };
}
