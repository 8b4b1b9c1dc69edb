import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ReplyError } from 'ioredis';
import { Collection, Document, Long, WriteConcern, WriteConcernSettings } from 'mongodb';
import { ApplyResult, BatchApplier, DeadLetter } from './batch-applier';
import { assertFieldPath, documentKeyOf, DocumentId, encodeField, OPERATOR, OperatorCode } from './buffered-field';
import { encodeComparable, encodeDelta, encodeSetValue } from './buffered-value';
import { BufferKeys, bufferKeys, completeMarker, legacyCompleteMarker, SET_ORDER_FIELD, SINCE_FIELD } from './buffer-keys';
import { ClaimDurability } from './claim-durability';
import { BufferFullError, BufferUnavailableError, FlushLockLostError, InvalidUpdateError } from './errors';
import { RedisLike, RedisScript } from './redis-script';

export interface BufferedMongoIncrementsOptions {
  /** Names this buffer's Redis keys; default `<database>.<collection>`. Producers and flushers must agree. */
  namespace?: string;
  /** Prefix of every Redis key; default `bmi`. */
  keyPrefix?: string;
  /** Create missing documents (default true) or only update documents that exist. */
  upsert?: boolean;
  /**
   * Field written into each touched document holding, per buffer, the last applied batch marker
   * (`{ <buffer scope>: <number> }`), which makes re-applying a batch after a crash a no-op and lets any
   * number of buffers write one document. Default `_bmiMarkers`; `false` turns markers off (then a crash
   * between the MongoDB write and the Redis acknowledgement applies that batch twice: at-least-once).
   */
  idempotencyMarker?: string | false;
  /** The one-number marker field of versions before scoped markers; read for their batches only. Default `_bmi`. */
  legacyIdempotencyMarker?: string;
  /** Past this many buffered fields, flush early instead of growing. Default 100,000. */
  maxBufferedFields?: number;
  /** Most fields one batch takes from the buffer, which bounds a flusher's memory. Default 20,000. */
  maxBatchFields?: number;
  /**
   * Hard limit of buffered fields: past it, updates that would add a field are refused with
   * `BufferFullError` (updates of fields already buffered still work). Default 5,000,000.
   */
  bufferLimitFields?: number;
  /** Dead letters kept (the oldest go first). Default 10,000. */
  maxDeadLetters?: number;
  /** Wait for the claim to reach the Redis AOF (`WAITAOF`) before writing MongoDB; `auto` (default) when AOF is on. */
  waitForAof?: 'auto' | boolean;
  /** Replicas that must hold a claim before MongoDB is written (`WAIT`). Default 0; 1 or more on replicated Redis. */
  waitForReplicas?: number;
  /** How long a claim may take to become durable before the flush fails and is retried. Default 5,000 ms. */
  durabilityTimeoutMs?: number;
  /** Write concern of the flush's bulkWrites (e.g. `{ w: 'majority' }` on a replica set). Default: the collection's. */
  writeConcern?: WriteConcernSettings;
  /**
   * Lease of the flush lock, renewed before every read step and every bulkWrite; once it lapses (the
   * flusher died or hangs) another flusher takes the batch over. Must outlast one bulkWrite. Default 30 s.
   */
  lockLeaseMs?: number;
  /** Fields read per HSCAN step when draining a large batch, and the most returned with the claim. Default 1,000. */
  readChunkSize?: number;
  /** Operations per bulkWrite call. Default 1,000 (50 on FerretDB, which hangs on 100 or more). */
  writeChunkSize?: number;
  /** Standalone instances flush on their own timer (default). Producers in a deployment set false. */
  autoFlush?: boolean;
  /** Called instead of a local flush when the buffer is full and autoFlush is off (e.g. enqueue a flush job). */
  onBufferFull?: () => unknown;
  /** First retry delay after a failed flush; doubles up to the flush interval. Default 100 ms. */
  retryDelayMs?: number;
}

export interface FlushReport {
  /** Batches applied by this flush (a batch left by a crashed flusher counts as recovered). */
  batches: number;
  recoveredBatches: number;
  fields: number;
  documents: number;
  deadLetters: number;
  durationMs: number;
}

export interface BufferStats {
  /** Fields waiting in the live buffer plus the batch being drained. */
  bufferedFields: number;
  /** Age of the oldest update not yet in MongoDB, 0 when nothing waits. */
  oldestPendingAgeMs: number;
}

interface OutgoingUpdate {
  operator: OperatorCode;
  field: string;
  value: string;
  fieldPath: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** Most updates sent in one script call, to keep each call short on the Redis side. */
const MAX_UPDATES_PER_CALL = 1_000;

type ClaimReply = ['busy', number] | ['empty'] | ['recovered' | 'taken', string, number, string[], string, string, number];

const SCRIPTS = {
  bufferUpdates: new RedisScript('buffer_updates'),
  claimBatch: new RedisScript('claim_batch'),
  finishBatch: new RedisScript('finish_batch'),
  extendLock: new RedisScript('extend_lock'),
  releaseLock: new RedisScript('release_lock'),
};
const UNREACHABLE_STATUSES = new Set(['reconnecting', 'close', 'end']);

/**
 * Buffers `$inc` / `$max` / `$min` / `$set` updates in a Redis hash and writes them to MongoDB in one
 * unordered bulkWrite per flush. Any number of instances, in one process or many, may share one Redis
 * and one MongoDB: every update is applied exactly once, also when a flusher dies mid-flush.
 *
 * Events: `flush` (FlushReport), `flushError` (Error), `deadLetter` (DeadLetter).
 */
export class BufferedMongoIncrements extends EventEmitter {
  readonly namespace: string;
  private readonly keys: BufferKeys;
  private readonly applier: BatchApplier;
  private readonly settings: Required<Omit<BufferedMongoIncrementsOptions, 'namespace' | 'onBufferFull' | 'writeChunkSize' | 'writeConcern'>>;
  private readonly durability: ClaimDurability;
  /** Names this instance's calls, so Redis can tell a call the client re-sent after a lost reply. */
  private readonly callerId = randomBytes(8).toString('hex');
  private calls = 0;
  private lockRenewedAt = -Infinity;
  /** Scripts loaded, the server probed: the first flush is as fast as later ones. */
  private readonly warm: Promise<void>;
  private readonly marker: string | false;
  private tickTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private retryDelayMs: number;
  private running?: Promise<FlushReport>;
  private queued?: Promise<FlushReport>;
  private earlyFlushRequested = false;
  private outbox: OutgoingUpdate[] = [];
  private outboxSend?: NodeJS.Immediate;
  private destroyed = false;
  private readonly startedAt = Date.now();
  private ticks = 0;

  constructor(
    readonly collection: Collection<Document> | Collection<never>,
    private readonly redis: RedisLike,
    readonly flushIntervalMs: number,
    private readonly options: BufferedMongoIncrementsOptions = {},
  ) {
    super();
    if (!Number.isFinite(flushIntervalMs) || flushIntervalMs <= 0) {
      throw new InvalidUpdateError('flushIntervalMs must be a positive number of milliseconds');
    }
    this.settings = {
      keyPrefix: options.keyPrefix ?? 'bmi',
      upsert: options.upsert ?? true,
      idempotencyMarker: options.idempotencyMarker ?? '_bmiMarkers',
      legacyIdempotencyMarker: options.legacyIdempotencyMarker ?? '_bmi',
      maxBufferedFields: options.maxBufferedFields ?? 100_000,
      maxBatchFields: options.maxBatchFields ?? 20_000,
      bufferLimitFields: options.bufferLimitFields ?? 5_000_000,
      maxDeadLetters: options.maxDeadLetters ?? 10_000,
      waitForAof: options.waitForAof ?? 'auto',
      waitForReplicas: options.waitForReplicas ?? 0,
      durabilityTimeoutMs: options.durabilityTimeoutMs ?? 5_000,
      lockLeaseMs: options.lockLeaseMs ?? 30_000,
      readChunkSize: options.readChunkSize ?? 1_000,
      autoFlush: options.autoFlush ?? true,
      retryDelayMs: options.retryDelayMs ?? 100,
    };
    this.marker = this.settings.idempotencyMarker;
    this.retryDelayMs = this.settings.retryDelayMs;
    this.namespace = options.namespace ?? `${collection.dbName}.${collection.collectionName}`;
    this.keys = bufferKeys(this.settings.keyPrefix, this.namespace);
    if (!(this.settings.durabilityTimeoutMs > 0)) throw new InvalidUpdateError('durabilityTimeoutMs must be a positive number of milliseconds (0 would make WAIT block forever)');
    if (this.marker !== false && this.marker === this.settings.legacyIdempotencyMarker) {
      throw new InvalidUpdateError('idempotencyMarker must differ from legacyIdempotencyMarker (scoped markers are objects)');
    }
    this.applier = new BatchApplier(collection as Collection<Document>, {
      upsert: this.settings.upsert,
      marker: this.marker,
      legacyMarker: this.settings.legacyIdempotencyMarker,
      writeChunkSize: options.writeChunkSize,
      writeConcern: options.writeConcern ? WriteConcern.fromOptions({ writeConcern: options.writeConcern }) : undefined,
    });
    this.durability = new ClaimDurability(redis, {
      waitForAof: this.settings.waitForAof,
      waitForReplicas: this.settings.waitForReplicas,
      timeoutMs: this.settings.durabilityTimeoutMs,
    });
    this.warm = this.warmUp();
    if (this.settings.autoFlush) this.scheduleTick();
  }

  /**
   * Loads the scripts and asks each server what it is (write chunk size, AOF), in the background: the
   * constructor neither waits nor throws for it, and what fails here is simply done again on first use.
   */
  private warmUp(): Promise<void> {
    const steps: Array<Promise<unknown>> = [
      ...Object.values(SCRIPTS).map((script) => script.load(this.redis)),
      this.applier.chunkSize(),
      this.applier.prepareCollection(),
      this.durability.prepare(),
    ];
    return Promise.allSettled(steps).then(() => undefined);
  }

  /** Adds `delta` (a number or bigint, negative too) to `fieldPath` of document `documentId`. */
  increment(documentId: DocumentId, fieldPath: string, delta: number | bigint): Promise<void> {
    return this.buffer(documentId, fieldPath, () => encodeDelta(delta));
  }

  /** Raises `fieldPath` to `value` if larger (numbers or Dates, e.g. `lastItemScrapedAt`). */
  max(documentId: DocumentId, fieldPath: string, value: number | Date): Promise<void> {
    return this.buffer(documentId, fieldPath, () => ({ operator: OPERATOR.max, value: encodeComparable(value) }));
  }

  /** Lowers `fieldPath` to `value` if smaller (numbers or Dates). */
  min(documentId: DocumentId, fieldPath: string, value: number | Date): Promise<void> {
    return this.buffer(documentId, fieldPath, () => ({ operator: OPERATOR.min, value: encodeComparable(value) }));
  }

  /** Sets `fieldPath` to `value`; the last write before a flush wins and replaces earlier buffered updates. */
  set(documentId: DocumentId, fieldPath: string, value: unknown): Promise<void> {
    return this.buffer(documentId, fieldPath, () => ({ operator: OPERATOR.set, value: encodeSetValue(value) }));
  }

  /**
   * Applies everything buffered before the call to MongoDB. Concurrent calls on one instance share
   * work; calls from other instances wait for the flush lock (one flush long), never an interval.
   */
  flush(): Promise<FlushReport> {
    if (!this.running) return this.startFlush();
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.startFlush();
      });
    return this.queued;
  }

  /** What waits in Redis for this namespace. */
  async stats(): Promise<BufferStats> {
    const [[, live], [, draining], [, liveBookkeeping], [, drainingBookkeeping], [, time]] = (await this.redis
      .multi()
      .hlen(this.keys.live)
      .hlen(this.keys.draining)
      .hmget(this.keys.live, SINCE_FIELD, SET_ORDER_FIELD)
      .hmget(this.keys.draining, SINCE_FIELD, SET_ORDER_FIELD)
      .time()
      .exec()) as Array<[Error | null, unknown]>;
    const [seconds, micros] = time as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const liveSince = (liveBookkeeping as Array<string | null>)[0];
    const drainingSince = (drainingBookkeeping as Array<string | null>)[0];
    const since = [liveSince, drainingSince].filter((value): value is string => typeof value === 'string').map(Number);
    const countOf = (fields: unknown, bookkeeping: unknown) =>
      Math.max(0, Number(fields) - (bookkeeping as Array<string | null>).filter((value) => value !== null).length);
    return {
      bufferedFields: countOf(live, liveBookkeeping) + countOf(draining, drainingBookkeeping),
      oldestPendingAgeMs: since.length ? Math.max(0, now - Math.min(...since)) : 0,
    };
  }

  /**
   * Read-your-writes for an increment: what MongoDB holds at `fieldPath` plus what is still buffered for
   * it. Exact while flushes run: a draining batch the document's marker shows as applied is not counted
   * twice, and a read that overlaps the claim of a new batch is retried. (With the marker off, a batch
   * applied but not yet acknowledged may be counted twice for that instant.)
   */
  async readIncremented(documentId: DocumentId, fieldPath: string): Promise<number> {
    const documentKey = documentKeyOf(documentId);
    assertFieldPath(fieldPath, [this.marker, this.settings.legacyIdempotencyMarker]);
    const integerField = encodeField(OPERATOR.incInteger, documentKey, fieldPath);
    const decimalField = encodeField(OPERATOR.incDecimal, documentKey, fieldPath);
    for (let attempt = 0; ; attempt++) {
      const [[, sequence], [, drainingId], [, format], [, scope], [, live], [, draining]] = (await this.redis
        .multi()
        .get(this.keys.batchSequence)
        .get(this.keys.drainingBatchId)
        .get(this.keys.drainingFormat)
        .get(this.keys.scope)
        .hmget(this.keys.live, integerField, decimalField)
        .hmget(this.keys.draining, integerField, decimalField)
        .exec()) as Array<[Error | null, unknown]>;
      const legacy = drainingId !== null && format === null;
      const markerPath = this.marker ? (legacy ? this.settings.legacyIdempotencyMarker : `${this.marker}.${scope}`) : undefined;
      const projection = { [fieldPath]: 1, ...(markerPath ? { [markerPath]: 1 } : {}) };
      const document = await (this.collection as Collection<Document>).findOne({ _id: documentId as never }, { projection });
      const sequenceAfter = await this.redis.get(this.keys.batchSequence);
      // A batch claimed between the two Redis reads may be in MongoDB but not in what we read: read again.
      if (sequenceAfter !== sequence && attempt < 10) continue;
      const appliedMarker = markerPath ? numberAt(document, markerPath) : -1;
      const complete = drainingId === null ? Infinity : legacy ? legacyCompleteMarker(drainingId as string) : completeMarker(drainingId as string);
      const drainingApplied = document !== null && markerPath !== undefined && appliedMarker >= complete;
      const pending = sumOf(live as Array<string | null>) + (drainingApplied ? 0 : sumOf(draining as Array<string | null>));
      return numberAt(document, fieldPath) + pending;
    }
  }

  /** Updates MongoDB refused for good, oldest first (at most `limit`). */
  async deadLetters(limit = 100): Promise<DeadLetter[]> {
    const texts = await this.redis.lrange(this.keys.deadLetters, 0, limit - 1);
    return texts.map((text) => JSON.parse(text) as DeadLetter);
  }

  /** How many dead letters wait. */
  deadLetterCount(): Promise<number> {
    return this.redis.llen(this.keys.deadLetters);
  }

  /**
   * Moves up to `limit` dead letters back into the buffer (atomically: each is buffered or kept), for
   * after the cause was fixed (e.g. the document's field type). Returns how many were buffered again.
   */
  async replayDeadLetters(limit = 1_000): Promise<number> {
    const reply = await SCRIPTS.bufferUpdates.run<Array<number | string>>(
      this.redis,
      [this.keys.live, this.keys.caller(this.callerId), this.keys.deadLetters, this.keys.callerRing(this.callerId)],
      [0, this.settings.bufferLimitFields, 'replay', limit],
    );
    return reply.slice(1).filter((kept) => kept === 0).length;
  }

  /** Drops every dead letter. */
  async dropDeadLetters(): Promise<void> {
    await this.redis.del(this.keys.deadLetters);
  }

  /** Stops the timers now. Never throws; whatever is buffered stays in Redis for the next flush. */
  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.tickTimer);
    clearTimeout(this.retryTimer);
    this.tickTimer = this.retryTimer = undefined;
  }

  /** Final flush, then stop. If the flush fails the data stays in Redis and the error is thrown. */
  async close(): Promise<void> {
    clearTimeout(this.tickTimer);
    clearTimeout(this.retryTimer);
    try {
      await this.flush();
    } finally {
      this.destroy();
    }
  }

  private async buffer(
    documentId: DocumentId,
    fieldPath: string,
    encode: () => { operator: OperatorCode; value: string },
  ): Promise<void> {
    if (this.destroyed) throw new BufferUnavailableError('this BufferedMongoIncrements was destroyed; the update was not buffered');
    const documentKey = documentKeyOf(documentId);
    assertFieldPath(fieldPath, [this.marker, this.settings.legacyIdempotencyMarker]);
    const { operator, value } = encode();
    if (UNREACHABLE_STATUSES.has(this.redis.status)) {
      throw new BufferUnavailableError(`Redis is not connected (${this.redis.status}); the update was not buffered`);
    }
    return new Promise<void>((resolve, reject) => {
      // Updates made in the same event-loop turn travel to Redis in one script call. setImmediate, not
      // nextTick: a server reads many requests in one turn, and they should share the call (and write).
      if (this.outbox.push({ operator, field: encodeField(operator, documentKey, fieldPath), value, fieldPath, resolve, reject }) === 1) {
        this.outboxSend = setImmediate(() => this.sendOutbox());
      }
    });
  }

  private sendOutbox(): void {
    clearImmediate(this.outboxSend);
    this.outboxSend = undefined;
    const updates = this.outbox;
    this.outbox = [];
    for (let start = 0; start < updates.length; start += MAX_UPDATES_PER_CALL) {
      void this.sendUpdates(updates.slice(start, start + MAX_UPDATES_PER_CALL));
    }
  }

  private async sendUpdates(updates: OutgoingUpdate[]): Promise<void> {
    let outcomes: Array<number | string>;
    try {
      // The call number makes the call run at most once, whatever the client re-sends after a lost reply.
      const args = [++this.calls, this.settings.bufferLimitFields, 'updates', ...updates.flatMap((update) => [update.operator, update.field, update.value])];
      const reply = await SCRIPTS.bufferUpdates.run<Array<number | string>>(this.redis, [this.keys.live, this.keys.caller(this.callerId), this.keys.deadLetters, this.keys.callerRing(this.callerId)], args);
      outcomes = reply[1] === 'replayed' ? [reply[0], ...replayedOutcomes(reply[2], updates.length)] : reply;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Redis answering with an error ran nothing; a lost connection may have lost only the reply.
      const outcome = error instanceof ReplyError ? 'Redis rejected the update; it was not buffered' : 'Redis did not confirm the update; it may or may not be buffered';
      for (const update of updates) update.reject(new BufferUnavailableError(`${outcome}: ${message}`, { cause: error }));
      return;
    }
    updates.forEach((update, index) => {
      const outcome = outcomes[index + 1];
      if (outcome === 0) update.resolve();
      else if (outcome === 'BMI_BUFFER_FULL') {
        update.reject(new BufferFullError(`the buffer of ${this.namespace} holds its limit of ${this.settings.bufferLimitFields} fields; the update was not buffered, retry later`));
      } else if (String(outcome).includes('BMI_TYPE_MISMATCH')) {
        update.reject(new InvalidUpdateError(`${update.fieldPath}: a pending max/min for this field holds another type (number vs Date)`));
      } else if (String(outcome).includes('overflow')) {
        update.reject(new InvalidUpdateError(`${update.fieldPath}: the buffered sum would overflow a signed 64-bit integer`));
      } else update.reject(new BufferUnavailableError(`Redis refused the update; it was not buffered: ${outcome}`));
    });
    if (Number(outcomes[0]) >= this.settings.maxBufferedFields) this.requestEarlyFlush();
  }

  private requestEarlyFlush(): void {
    if (this.settings.autoFlush) {
      // flush() coalesces: at most one running and one queued, however many updates cross the line.
      this.flush().catch((error) => this.emitFlushError(error));
      return;
    }
    if (this.earlyFlushRequested || !this.options.onBufferFull) return;
    this.earlyFlushRequested = true;
    Promise.resolve()
      .then(() => this.options.onBufferFull?.())
      .catch((error) => this.emitFlushError(error))
      .finally(() => {
        this.earlyFlushRequested = false;
      });
  }

  /** Ticks every flushIntervalMs counted from construction; a slow flush never shifts the schedule. */
  private scheduleTick(): void {
    if (this.destroyed) return;
    this.ticks += 1;
    const delay = Math.max(0, this.startedAt + this.ticks * this.flushIntervalMs - Date.now());
    this.tickTimer = setTimeout(() => {
      this.scheduleTick();
      this.flush().catch((error) => this.onFailedFlush(error));
    }, delay);
    this.tickTimer.unref();
  }

  private onFailedFlush(error: unknown): void {
    this.emitFlushError(error);
    if (this.destroyed || this.retryTimer) return;
    // Back off (with jitter) and retry; the regular ticks go on, and nothing leaves Redis until applied.
    const delay = Math.min(this.retryDelayMs, this.flushIntervalMs) * (0.5 + Math.random() / 2);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.flushIntervalMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush().catch((retryError) => this.onFailedFlush(retryError));
    }, delay);
    this.retryTimer.unref();
  }

  private emitFlushError(error: unknown): void {
    if (this.listenerCount('flushError') > 0) this.emit('flushError', error);
    else console.warn(`[BufferedMongoIncrements ${this.namespace}] flush failed, will retry:`, error instanceof Error ? error.message : error);
  }

  private startFlush(): Promise<FlushReport> {
    // Updates still waiting for their script call go first (same connection, so in order): a flush
    // includes every update this instance was asked for before it.
    if (this.outbox.length) this.sendOutbox();
    const flushing = this.drainAndApply().finally(() => {
      if (this.running === flushing) this.running = undefined;
    });
    this.running = flushing;
    return flushing;
  }

  private async drainAndApply(): Promise<FlushReport> {
    await this.warm;
    const startedAt = performance.now();
    const token = randomUUID();
    const report: FlushReport = { batches: 0, recoveredBatches: 0, fields: 0, documents: 0, deadLetters: 0, durationMs: 0 };
    let waitMs = 2;
    const waitDeadline = Date.now() + 2 * this.settings.lockLeaseMs;
    // A backlog comes out in batches of at most maxBatchFields; one flush takes what waited when it
    // started (and one more batch), not what producers keep adding meanwhile.
    let batchesLeft = Infinity;
    try {
      while (batchesLeft-- > 0) {
        const claim = await SCRIPTS.claimBatch.run<ClaimReply>(
          this.redis,
          [this.keys.lock, this.keys.live, this.keys.draining, this.keys.drainingBatchId, this.keys.batchSequence, this.keys.scope, this.keys.drainingFormat],
          [token, this.settings.lockLeaseMs, this.settings.readChunkSize, this.settings.maxBatchFields, randomBytes(6).toString('hex')],
        );
        if (claim[0] === 'empty') break;
        if (claim[0] !== 'busy') this.lockRenewedAt = performance.now();
        if (claim[0] === 'busy') {
          // Another flusher holds the lock: wait for it (one flush, or the lease if it died), then take
          // what arrived after its claim.
          if (Date.now() > waitDeadline) throw new Error(`flush lock of ${this.namespace} stayed busy`);
          await sleep(Math.min(waitMs, Math.max(1, claim[1])));
          waitMs = Math.min(waitMs * 2, 50);
          batchesLeft += 1;
          continue;
        }
        const [state, batchId, fieldCount, inline, scope, format, leftLive] = claim;
        // Nothing reaches MongoDB before Redis can no longer lose the claim (AOF, replicas as configured).
        await this.durability.confirm(this.keys.lock, this.durability.connectionOf(this.keys.lock));
        const entries = fieldCount === inline.length / 2 ? pairs(inline) : await this.readBatch(token);
        const applied: ApplyResult = await this.applier.apply(
          { id: batchId, scope, format: Number(format), entries },
          () => this.keepLock(token),
          (letters) => this.recordDeadLetters(letters),
        );
        const last = state === 'taken' && (leftLive === 0 || batchesLeft === 0);
        await SCRIPTS.finishBatch.run(this.redis, [this.keys.lock, this.keys.draining, this.keys.drainingBatchId, this.keys.drainingFormat], [token, batchId, last ? 1 : 0]);
        report.batches += 1;
        report.recoveredBatches += state === 'recovered' ? 1 : 0;
        report.fields += applied.fields;
        report.documents += applied.documents;
        report.deadLetters += applied.deadLetters.length;
        if (last) break;
        // A recovered batch came first, or a backlog is cut in parts: take the next.
        if (state === 'taken' && batchesLeft === Infinity) batchesLeft = Math.ceil(leftLive / this.settings.maxBatchFields);
      }
    } finally {
      await SCRIPTS.releaseLock.run(this.redis, [this.keys.lock], [token]).catch(() => undefined);
    }
    report.durationMs = performance.now() - startedAt;
    this.retryDelayMs = this.settings.retryDelayMs;
    this.emit('flush', report);
    return report;
  }

  /**
   * Reads a large draining batch in HSCAN steps, so Redis is never blocked by one huge reply. Each step
   * renews the flush lock: the lease only has to outlast one step or one bulkWrite, not the whole flush.
   */
  private async readBatch(token: string): Promise<Array<[string, string]>> {
    const entries: Array<[string, string]> = [];
    let cursor = '0';
    do {
      const [next, flat] = await this.redis.hscan(this.keys.draining, cursor, 'COUNT', this.settings.readChunkSize);
      for (let i = 0; i < flat.length; i += 2) entries.push([flat[i], flat[i + 1]]);
      cursor = next;
      await this.keepLock(token);
    } while (cursor !== '0');
    return entries;
  }

  private async keepLock(token: string): Promise<void> {
    // Renewed a moment ago (or just claimed): it cannot have lapsed, so save the round trip.
    if (performance.now() - this.lockRenewedAt < this.settings.lockLeaseMs / 4) return;
    this.lockRenewedAt = performance.now();
    const kept = await SCRIPTS.extendLock.run<number>(this.redis, [this.keys.lock], [token, this.settings.lockLeaseMs]);
    if (kept !== 1) throw new FlushLockLostError(`flush of ${this.namespace} lost its lock; another flusher took the batch over`);
  }

  private async recordDeadLetters(deadLetters: DeadLetter[]): Promise<void> {
    if (deadLetters.length === 0) return;
    await this.redis
      .multi()
      .rpush(this.keys.deadLetters, ...deadLetters.map((letter) => JSON.stringify(letter)))
      .ltrim(this.keys.deadLetters, -this.settings.maxDeadLetters, -1)
      .exec();
    for (const letter of deadLetters) this.emit('deadLetter', letter);
  }
}

/** Outcomes of a call that had run already: refusals as its first run answered them, else buffered. */
function replayedOutcomes(firstRun: number | string | undefined, count: number): Array<number | string> {
  if (typeof firstRun === 'string' && firstRun.length > 0) return JSON.parse(firstRun) as Array<number | string>;
  return new Array<number>(count).fill(0);
}

function sumOf(sums: Array<string | null>): number {
  return sums.reduce((total: number, sum) => total + (sum === null ? 0 : Number(sum)), 0);
}

function numberAt(document: Document | null, fieldPath: string): number {
  let value: unknown = document;
  for (const segment of fieldPath.split('.')) value = value && typeof value === 'object' ? (value as Document)[segment] : undefined;
  return typeof value === 'number' ? value : value instanceof Long ? value.toNumber() : Number(value ?? 0);
}

function pairs(flat: string[]): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) result.push([flat[i], flat[i + 1]]);
  return result;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
