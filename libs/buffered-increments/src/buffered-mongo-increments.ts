import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ReplyError } from 'ioredis';
import { Collection, Document, WriteConcern, WriteConcernSettings } from 'mongodb';
import { BatchApplier, DeadLetter } from './batch-applier';
import {
  assertFieldPath,
  decodeField,
  documentKeyOf,
  documentKeyOfField,
  DocumentId,
  encodeField,
  OPERATOR,
  OperatorCode,
} from './buffered-field';
import { OutgoingCall } from './outgoing-call';
import { encodeComparable, encodeDelta, encodeSetValue } from './buffered-value';
import { shardKeys } from './buffer-keys';
import { BufferCallReply, BufferShard, SCRIPTS, ShardReport } from './buffer-shard';
import { ClaimDurability } from './claim-durability';
import { BufferFullError, BufferUnavailableError, InvalidUpdateError } from './errors';
import { ReconnectWindow, RedisLike, shardOf, SilentConnectionWatchdog } from '@bufferq/redis-scripts';

export interface BufferedMongoIncrementsOptions {
  /** Names this buffer's Redis keys; default `<database>.<collection>`. Producers and flushers must agree. */
  namespace?: string;
  /** Prefix of every Redis key; default `bmi`. */
  keyPrefix?: string;
  /**
   * Hash slots one buffer is spread over (default 1): on a Redis Cluster, shards land on different
   * nodes and flush in parallel. A document always goes to the same shard. Producers and flushers of
   * one buffer must agree; to change it on a live buffer see `retiredShardCounts`.
   */
  shards?: number;
  /**
   * Shard counts this buffer had before (e.g. `[1]` after going from 1 to 4 shards): producers no longer
   * write there, flushers drain them until empty. Keep them until `stats()` shows nothing buffered.
   */
  retiredShardCounts?: number[];
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
   * A flush's MongoDB call not answered within it (its connection went silent) is abandoned, and the flush
   * fails and is tried again; with markers, a write that lands later changes nothing.
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
  /**
   * How long an update may wait in the process for others to travel with it in one script call. 0
   * (default): updates made in one event-loop turn travel together (in calls of growing size, the first
   * sent while the turn goes on, so Redis works while the process gathers the rest). A few ms gather
   * updates across turns into larger calls (more increments per second for a busy producer), and each
   * update is acknowledged up to that much later.
   */
  lingerMs?: number;
  /**
   * A connection that looks open but leaves a `PING` unanswered this long (its peer vanished without a
   * reset) is reconnected, and the client sends its unanswered calls again; each buffer call still runs
   * once. Default 10,000 ms; 0 turns it off. A Cluster client is watched node by node (see
   * `SilentConnectionWatchdog`).
   * A flush's durability wait (`WAIT` / `WAITAOF`) holds the connection's replies up to `durabilityTimeoutMs`;
   * the watchdog waits that long on top while it runs.
   */
  replyTimeoutMs?: number;
  /**
   * An update (or a `readIncremented`) made while the client reconnects, within this long of losing its
   * connection, waits for the new connection instead of failing: a blip, a failover or a silent
   * connection's reconnect takes some 100 ms. Past that it fails at once (an update with
   * BufferUnavailableError, nothing buffered), so calls do not pile up in the process while Redis is away.
   * Default 1,000 ms; 0 fails at once.
   */
  reconnectWaitMs?: number;
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

/** Most updates sent in one script call, to keep each call short on the Redis side. */
const MAX_UPDATES_PER_CALL = 1_000;
/**
 * A turn's first call goes once it holds this many updates, the next once it holds twice as many, and so
 * on up to MAX_UPDATES_PER_CALL: Redis runs the first calls while the process gathers the rest, and the
 * replies of the first let their callers make new updates while Redis runs the next (awaited callers
 * otherwise leave Redis idle while the process works, and the process idle while Redis does).
 */
const FIRST_CALL_UPDATES = 32;
/** Field paths whose integer `$inc` fields are remembered, and documents remembered per path. */
const MAX_REMEMBERED_PATHS = 64;
const MAX_REMEMBERED_FIELDS_PER_PATH = 100_000;

const UNREACHABLE_STATUSES = new Set(['reconnecting', 'close', 'end']);

/**
 * How ioredis refuses a call it did not send: a client without an offline queue that is (re)connecting.
 * Such a call was not buffered, and its caller is told so, not "may or may not".
 */
const UNSENT_CALL_ERROR = "Stream isn't writeable";

/**
 * Buffers `$inc` / `$max` / `$min` / `$set` updates in a Redis hash and writes them to MongoDB in one
 * unordered bulkWrite per flush. Any number of instances, in one process or many, may share one Redis
 * and one MongoDB: every update is applied exactly once, also when a flusher dies mid-flush.
 *
 * Events: `flush` (FlushReport), `flushError` (Error), `deadLetter` (DeadLetter), `replyTimeout`
 * (`{ unansweredForMs }`: the connection went silent and the client was made to reconnect and re-send,
 * see `replyTimeoutMs`).
 */
export class BufferedMongoIncrements extends EventEmitter {
  readonly namespace: string;
  /** Where producers write: a document goes to `shards[shardOf(document)]`. */
  private readonly shards: BufferShard[];
  /** Shards of earlier shard counts, drained by flushes until empty. */
  private readonly retiredShards: BufferShard[];
  /** Every shard that may hold something: where flushes, stats and dead letters look. */
  private readonly allShards: BufferShard[];
  /** Top-level fields no update may touch: the marker fields. */
  private readonly reservedFields: Array<string | false>;
  private readonly applier: BatchApplier;
  private readonly settings: Required<
    Omit<
      BufferedMongoIncrementsOptions,
      'namespace' | 'onBufferFull' | 'writeChunkSize' | 'writeConcern' | 'retiredShardCounts'
    >
  >;
  private readonly durability: ClaimDurability;
  /** Names this instance's calls, so Redis can tell a call the client re-sent after a lost reply. */
  private readonly callerId = randomBytes(8).toString('hex');
  private calls = 0;
  /** Scripts loaded, the server probed: the first flush is as fast as later ones. */
  private readonly warm: Promise<void>;
  private readonly marker: string | false;
  private tickTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private retryDelayMs: number;
  /** Per flush target (all shards, or one): at most one flush running and one queued behind it. */
  private readonly flushes = new Map<string, { running?: Promise<FlushReport>; queued?: Promise<FlushReport> }>();
  private earlyFlushRequested = false;
  /** Per shard, the script call gathering updates until the turn (or linger window) ends. */
  private readonly gathering: Array<OutgoingCall | undefined> = [];
  /** Per shard, the calls sent early in this turn (or linger window). */
  private readonly sentThisTurn: number[] = [];
  private sendTimer?: NodeJS.Immediate | NodeJS.Timeout;
  /** Per field path, the buffered field of an integer `$inc` per document id. */
  private readonly integerFields = new Map<string, Map<string | number, string>>();
  /** Field paths already validated (they are few in practice): the check runs once per path. */
  private readonly checkedPaths = new Set<string>();
  private destroyed = false;
  /** Ends this instance's watch of the client for a connection gone silent (standalone Redis). */
  private readonly stopWatchingConnection?: () => void;
  /** Lets an update made while the client reconnects wait for it (see `reconnectWaitMs`). */
  private readonly reconnectWindow: ReconnectWindow;
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
      shards: options.shards ?? 1,
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
      lingerMs: options.lingerMs ?? 0,
      replyTimeoutMs: options.replyTimeoutMs ?? 10_000,
      reconnectWaitMs: options.reconnectWaitMs ?? 1_000,
    };
    this.marker = this.settings.idempotencyMarker;
    this.retryDelayMs = this.settings.retryDelayMs;
    this.namespace = options.namespace ?? `${collection.dbName}.${collection.collectionName}`;
    if (!Number.isInteger(this.settings.shards) || this.settings.shards < 1 || this.settings.shards > 1024) {
      throw new InvalidUpdateError('shards must be an integer from 1 to 1,024');
    }
    if (!(Number.isFinite(this.settings.lingerMs) && this.settings.lingerMs >= 0))
      throw new InvalidUpdateError('lingerMs must be a non-negative number of milliseconds');
    if (!(Number.isFinite(this.settings.replyTimeoutMs) && this.settings.replyTimeoutMs >= 0))
      throw new InvalidUpdateError('replyTimeoutMs must be a non-negative number of milliseconds');
    if (!(Number.isFinite(this.settings.reconnectWaitMs) && this.settings.reconnectWaitMs >= 0))
      throw new InvalidUpdateError('reconnectWaitMs must be a non-negative number of milliseconds');
    if (!(this.settings.durabilityTimeoutMs > 0))
      throw new InvalidUpdateError(
        'durabilityTimeoutMs must be a positive number of milliseconds (0 would make WAIT block forever)',
      );
    if (this.marker !== false && this.marker === this.settings.legacyIdempotencyMarker) {
      throw new InvalidUpdateError(
        'idempotencyMarker must differ from legacyIdempotencyMarker (scoped markers are objects)',
      );
    }
    this.applier = new BatchApplier(collection as Collection<Document>, {
      upsert: this.settings.upsert,
      marker: this.marker,
      legacyMarker: this.settings.legacyIdempotencyMarker,
      writeChunkSize: options.writeChunkSize,
      writeConcern: options.writeConcern ? WriteConcern.fromOptions({ writeConcern: options.writeConcern }) : undefined,
      callTimeoutMs: this.settings.lockLeaseMs,
    });
    this.durability = new ClaimDurability(redis, {
      waitForAof: this.settings.waitForAof,
      waitForReplicas: this.settings.waitForReplicas,
      timeoutMs: this.settings.durabilityTimeoutMs,
    });
    const context = {
      redis,
      applier: this.applier,
      durability: this.durability,
      collection: collection as Collection<Document>,
      settings: { ...this.settings, marker: this.marker, legacyMarker: this.settings.legacyIdempotencyMarker },
      onDeadLetter: (letter: DeadLetter) => this.emit('deadLetter', letter),
    };
    const shardsOf = (count: number) =>
      Array.from(
        { length: count },
        (_, index) => new BufferShard(shardKeys(this.settings.keyPrefix, this.namespace, count, index), context),
      );
    this.shards = shardsOf(this.settings.shards);
    this.retiredShards = [...new Set(options.retiredShardCounts ?? [])]
      .filter((count) => count !== this.settings.shards)
      .flatMap(shardsOf);
    this.allShards = [...this.shards, ...this.retiredShards];
    this.reservedFields = [this.marker, this.settings.legacyIdempotencyMarker];
    this.reconnectWindow = ReconnectWindow.of(redis);
    this.warm = this.warmUp();
    if (this.settings.autoFlush) this.scheduleTick();
    if (this.settings.replyTimeoutMs > 0)
      this.stopWatchingConnection = SilentConnectionWatchdog.watch(
        redis,
        this.settings.replyTimeoutMs,
        (unansweredForMs) => this.emit('replyTimeout', { unansweredForMs }),
      );
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
    // The hot path: a safe integer delta, summed with others of the field while the call gathers.
    if (typeof delta === 'number' && Number.isSafeInteger(delta)) {
      let field: string;
      try {
        field = this.integerField(documentId, fieldPath);
      } catch (error) {
        return Promise.reject(error);
      }
      return this.buffer(field, String(delta), delta);
    }
    return this.validated(documentId, fieldPath, () => encodeDelta(delta));
  }

  /**
   * Buffers every increment or none, in one script call: if one is refused (e.g. its sum would
   * overflow), the others are undone and the call rejects with that refusal. For a request that must
   * not be half recorded (the counters API's batch form). All documents must live in one shard.
   */
  async incrementAll(
    increments: Array<{ documentId: DocumentId; fieldPath: string; delta: number | bigint }>,
  ): Promise<void> {
    if (this.destroyed)
      throw new BufferUnavailableError('this BufferedMongoIncrements was destroyed; the update was not buffered');
    if (increments.length === 0) return;
    // Grouped by delta: all or nothing, the order of the updates changes no outcome, and a call whose
    // deltas repeat carries one argument per update instead of two.
    const byValue = new Map<string, string[]>();
    let count = 0;
    let shard: BufferShard | undefined;
    for (const { documentId, fieldPath, delta } of increments) {
      let field: string;
      let value: string;
      if (typeof delta === 'number' && Number.isSafeInteger(delta)) {
        field = this.integerField(documentId, fieldPath);
        value = String(delta);
      } else {
        const documentKey = documentKeyOf(documentId);
        this.assertPath(fieldPath);
        const encoded = encodeDelta(delta);
        field = encodeField(encoded.operator, documentKey, fieldPath);
        value = encoded.value;
      }
      const own = this.shards.length === 1 ? this.shards[0] : this.shardFor(documentKeyOfField(field));
      if (shard !== undefined && own !== shard)
        throw new InvalidUpdateError(
          'incrementAll: the documents live in different shards, so they cannot be buffered together',
        );
      shard = own;
      const fields = byValue.get(value);
      if (fields) fields.push(field);
      else byValue.set(value, [field]);
      count += 1;
    }
    const runs = 2 * byValue.size < count;
    const args: string[] = [];
    const sent: string[] = [];
    for (const [value, fields] of byValue) {
      if (runs) args.push(value, String(fields.length));
      for (const field of fields) {
        if (runs) args.push(field);
        else args.push(field, value);
        sent.push(field);
      }
    }
    await this.reconnectWindow.untilReconnected(this.settings.reconnectWaitMs);
    this.assertBufferable();
    let reply: BufferCallReply;
    try {
      reply = await shard!.buffer(this.callerId, ++this.calls, args, runs ? 'atomic-runs' : 'atomic');
    } catch (error) {
      throw callFailure(error);
    }
    const refused = reply.outcomes?.findIndex((outcome) => outcome !== 0 && outcome !== 'BMI_NOT_APPLIED') ?? -1;
    if (refused >= 0) throw this.refusal(reply.outcomes![refused], decodeField(sent[refused]).fieldPath);
    if (reply.length >= this.settings.maxBufferedFields) this.requestEarlyFlush();
  }

  /** Raises `fieldPath` to `value` if larger (numbers or Dates, e.g. `lastItemScrapedAt`). */
  max(documentId: DocumentId, fieldPath: string, value: number | Date): Promise<void> {
    return this.validated(documentId, fieldPath, () => ({ operator: OPERATOR.max, value: encodeComparable(value) }));
  }

  /** Lowers `fieldPath` to `value` if smaller (numbers or Dates). */
  min(documentId: DocumentId, fieldPath: string, value: number | Date): Promise<void> {
    return this.validated(documentId, fieldPath, () => ({ operator: OPERATOR.min, value: encodeComparable(value) }));
  }

  /** Sets `fieldPath` to `value`; the last write before a flush wins and replaces earlier buffered updates. */
  set(documentId: DocumentId, fieldPath: string, value: unknown): Promise<void> {
    return this.validated(documentId, fieldPath, () => ({ operator: OPERATOR.set, value: encodeSetValue(value) }));
  }

  /**
   * Applies everything buffered before the call to MongoDB, every shard in parallel; `{ shard }` flushes
   * one shard (shard 0 also drains retired shards), as the worker's per-shard jobs do. Concurrent calls
   * on one instance share work; calls from other instances wait for the shard's flush lock (one flush
   * long), never an interval.
   */
  flush(target: { shard?: number } = {}): Promise<FlushReport> {
    const shard = target.shard;
    if (shard !== undefined && !(Number.isInteger(shard) && shard >= 0 && shard < this.shards.length)) {
      return Promise.reject(new InvalidUpdateError(`shard must be an integer from 0 to ${this.shards.length - 1}`));
    }
    const key = shard === undefined ? 'all' : String(shard);
    const slot = this.flushes.get(key) ?? {};
    this.flushes.set(key, slot);
    if (!slot.running) return this.startFlush(slot, shard);
    slot.queued ??= slot.running
      .catch(() => undefined)
      .then(() => {
        slot.queued = undefined;
        return this.startFlush(slot, shard);
      });
    return slot.queued;
  }

  /** What waits in Redis for this buffer, across its shards (retired ones included). */
  async stats(): Promise<BufferStats> {
    const all = await Promise.all(this.allShards.map((shard) => shard.stats()));
    return {
      bufferedFields: all.reduce((sum, shard) => sum + shard.bufferedFields, 0),
      oldestPendingAgeMs: Math.max(0, ...all.map((shard) => shard.oldestPendingAgeMs)),
    };
  }

  /**
   * Read-your-writes for an increment: what MongoDB holds at `fieldPath` plus what is still buffered for
   * it. Exact while flushes run: a draining batch the document's marker shows as applied is not counted
   * twice, and a read that overlaps the claim of a new batch is retried. (With the marker off, a batch
   * applied but not yet acknowledged may be counted twice for that instant.)
   */
  async readIncremented(documentId: DocumentId, fieldPath: string): Promise<number> {
    return Number(await this.readIncrementedExact(documentId, fieldPath));
  }

  /**
   * `readIncremented`, exact past 2^53: a bigint when the field holds an integer (Int64 in MongoDB, or
   * integer increments only) beyond the safe range, else a number.
   */
  async readIncrementedExact(documentId: DocumentId, fieldPath: string): Promise<number | bigint> {
    const documentKey = documentKeyOf(documentId);
    this.assertPath(fieldPath);
    const fields: [string, string] = [
      encodeField(OPERATOR.incInteger, documentKey, fieldPath),
      encodeField(OPERATOR.incDecimal, documentKey, fieldPath),
    ];
    await this.reconnectWindow.untilReconnected(this.settings.reconnectWaitMs);
    const own = await this.shardFor(documentKey).readIncremented(documentId, fieldPath, fields);
    // Retired shards may still hold this document's older increments.
    const retired = await Promise.all(
      this.retiredShards.map((shard) => shard.readIncremented(documentId, fieldPath, fields)),
    );
    const integers = retired.reduce((sum, read) => sum + read.pendingIntegers, own.pendingIntegers);
    const decimals = retired.reduce((sum, read) => sum + read.pendingDecimals, own.pendingDecimals);
    const stored = own.stored;
    if (decimals !== 0 || (typeof stored === 'number' && !Number.isInteger(stored)))
      return Number(stored) + Number(integers) + decimals;
    const total = BigInt(stored) + integers;
    return total >= BigInt(Number.MIN_SAFE_INTEGER) && total <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(total) : total;
  }

  /** Updates MongoDB refused for good, oldest first per shard (at most `limit`). */
  async deadLetters(limit = 100): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    for (const shard of this.allShards) {
      if (letters.length >= limit) break;
      letters.push(...(await shard.deadLetters(limit - letters.length)));
    }
    return letters;
  }

  /** How many dead letters wait. */
  async deadLetterCount(): Promise<number> {
    const counts = await Promise.all(this.allShards.map((shard) => shard.deadLetterCount()));
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /**
   * Moves up to `limit` dead letters back into the buffer (atomically: each is buffered or kept), for
   * after the cause was fixed (e.g. the document's field type). Returns how many were buffered again.
   */
  async replayDeadLetters(limit = 1_000): Promise<number> {
    let replayed = 0;
    for (const shard of this.allShards) replayed += await shard.replayDeadLetters(this.callerId, limit);
    return replayed;
  }

  /** Drops every dead letter. */
  async dropDeadLetters(): Promise<void> {
    await Promise.all(this.allShards.map((shard) => shard.dropDeadLetters()));
  }

  /** Stops the timers now. Never throws; whatever is buffered stays in Redis for the next flush. */
  destroy(): void {
    this.destroyed = true;
    this.stopWatchingConnection?.();
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

  /** Validates an update and buffers it as one update of its own (never summed with others). */
  private validated(
    documentId: DocumentId,
    fieldPath: string,
    encode: () => { operator: OperatorCode; value: string },
  ): Promise<void> {
    let field: string;
    let value: string;
    try {
      const documentKey = documentKeyOf(documentId);
      this.assertPath(fieldPath);
      const encoded = encode();
      field = encodeField(encoded.operator, documentKey, fieldPath);
      value = encoded.value;
    } catch (error) {
      return Promise.reject(error);
    }
    return this.buffer(field, value, NaN);
  }

  /**
   * The buffered field of an integer `$inc`, validated. Remembered per path and id, as producers count
   * the same few paths of the same documents over and over (bounded; ObjectIds are encoded each time).
   */
  private integerField(documentId: DocumentId, fieldPath: string): string {
    const byId = this.integerFields.get(fieldPath);
    const known = byId?.get(documentId as string | number);
    if (known !== undefined) return known;
    const field = encodeField(OPERATOR.incInteger, documentKeyOf(documentId), fieldPath);
    this.assertPath(fieldPath);
    if (typeof documentId === 'object') return field;
    if (byId === undefined) {
      if (this.integerFields.size < MAX_REMEMBERED_PATHS)
        this.integerFields.set(fieldPath, new Map([[documentId, field]]));
    } else {
      if (byId.size >= MAX_REMEMBERED_FIELDS_PER_PATH) byId.clear();
      byId.set(documentId, field);
    }
    return field;
  }

  /**
   * Puts an update into the call gathering for its shard. `delta` is an integer `$inc`'s delta (it may
   * be summed with others of its field), NaN for any other update.
   */
  private buffer(field: string, value: string, delta: number): Promise<void> {
    const gathered = () =>
      new Promise<void>((resolve, reject) => {
        this.assertBufferable(); // a throw here rejects the promise
        this.gather(field, value, delta, resolve, reject);
      });
    const reconnected = this.reconnectWindow.untilReconnected(this.settings.reconnectWaitMs);
    return reconnected === undefined ? gathered() : reconnected.then(gathered);
  }

  private gather(
    field: string,
    value: string,
    delta: number,
    resolve: () => void,
    reject: (error: Error) => void,
  ): void {
    const shard = this.shards.length === 1 ? 0 : shardOf(documentKeyOfField(field), this.shards.length);
    const call = (this.gathering[shard] ??= new OutgoingCall(this.fullCallSize(shard)));
    call.add(field, value, delta, resolve, reject);
    if (this.sendTimer === undefined) {
      // Updates made in the same event-loop turn (or linger window) travel to Redis together, in one
      // script call or a few growing ones (FIRST_CALL_UPDATES). setImmediate, not nextTick: a server reads
      // many requests in one turn, and they should share the calls (and writes).
      this.sendTimer =
        this.settings.lingerMs > 0
          ? setTimeout(() => this.sendGathered(), this.settings.lingerMs)
          : setImmediate(() => this.sendGathered());
    } else if (call.size >= call.capacity) {
      // A full call goes now; the next update starts another.
      this.sentThisTurn[shard] = (this.sentThisTurn[shard] ?? 0) + 1;
      this.gathering[shard] = undefined;
      void this.sendCall(this.shards[shard], call);
    }
  }

  /**
   * Updates that fill the shard's next call: growing from FIRST_CALL_UPDATES within a turn. A linger
   * window is there to gather larger calls, so its calls go only once they hold the most a call takes.
   */
  private fullCallSize(shard: number): number {
    if (this.settings.lingerMs > 0) return MAX_UPDATES_PER_CALL;
    return Math.min(MAX_UPDATES_PER_CALL, FIRST_CALL_UPDATES * 2 ** (this.sentThisTurn[shard] ?? 0));
  }

  /** Validates a field path; paths seen before were valid then and are now (the rules never change). */
  private assertPath(fieldPath: string): void {
    if (this.checkedPaths.has(fieldPath)) return;
    assertFieldPath(fieldPath, this.reservedFields);
    // Bounded: a producer writing ever new paths re-checks them instead of growing this set.
    if (this.checkedPaths.size >= 1_024) this.checkedPaths.clear();
    this.checkedPaths.add(fieldPath);
  }

  private sendGathered(): void {
    // Each kind is cleared by its own function (clearImmediate on a timeout corrupts the immediate queue).
    if (this.settings.lingerMs > 0) clearTimeout(this.sendTimer as NodeJS.Timeout);
    else clearImmediate(this.sendTimer as NodeJS.Immediate);
    this.sendTimer = undefined;
    this.sentThisTurn.fill(0);
    this.gathering.forEach((call, shard) => {
      if (call === undefined) return;
      this.gathering[shard] = undefined;
      void this.sendCall(this.shards[shard], call);
    });
  }

  private shardFor(documentKey: string): BufferShard {
    return this.shards[shardOf(documentKey, this.shards.length)];
  }

  private async sendCall(shard: BufferShard, call: OutgoingCall): Promise<void> {
    let reply: BufferCallReply;
    try {
      // The call number makes the call run at most once, whatever the client re-sends after a lost reply.
      const { mode, args } = call.encode();
      reply = await shard.buffer(this.callerId, ++this.calls, args, mode);
    } catch (error) {
      call.rejectAll(callFailure(error));
      return;
    }
    if (reply.outcomes === undefined) call.resolveAll();
    else {
      const resent = call.settle(reply.outcomes, (outcome, field) =>
        this.refusal(outcome, decodeField(field).fieldPath),
      );
      for (const update of resent) this.gather(update.field, update.value, NaN, update.resolve, update.reject);
    }
    if (reply.length >= this.settings.maxBufferedFields) this.requestEarlyFlush();
  }

  /** Fails fast when destroyed or while Redis is away: nothing is sent, so nothing was buffered. */
  private assertBufferable(): void {
    if (this.destroyed)
      throw new BufferUnavailableError('this BufferedMongoIncrements was destroyed; the update was not buffered');
    if (UNREACHABLE_STATUSES.has(this.redis.status))
      throw new BufferUnavailableError(`Redis is not connected (${this.redis.status}); the update was not buffered`);
  }

  /** The error for an update the buffer script refused (nothing of it was buffered). */
  private refusal(outcome: number | string, fieldPath: string): Error {
    if (outcome === 'BMI_BUFFER_FULL') {
      return new BufferFullError(
        `the buffer of ${this.namespace} holds its limit of ${this.settings.bufferLimitFields} fields; the update was not buffered, retry later`,
      );
    }
    if (String(outcome).includes('BMI_TYPE_MISMATCH'))
      return new InvalidUpdateError(
        `${fieldPath}: a pending max/min for this field holds another type (number vs Date)`,
      );
    if (String(outcome).includes('overflow'))
      return new InvalidUpdateError(`${fieldPath}: the buffered sum would overflow a signed 64-bit integer`);
    return new BufferUnavailableError(`Redis refused the update; it was not buffered: ${outcome}`);
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
    else
      console.warn(
        `[BufferedMongoIncrements ${this.namespace}] flush failed, will retry:`,
        error instanceof Error ? error.message : error,
      );
  }

  private startFlush(slot: { running?: Promise<FlushReport> }, shard: number | undefined): Promise<FlushReport> {
    // Updates still waiting for their script call go first (same connection, so in order): a flush
    // includes every update this instance was asked for before it.
    if (this.sendTimer !== undefined) this.sendGathered();
    const shards =
      shard === undefined
        ? this.allShards
        : shard === 0
          ? [this.shards[0], ...this.retiredShards]
          : [this.shards[shard]];
    const flushing = this.drainShards(shards).finally(() => {
      if (slot.running === flushing) slot.running = undefined;
    });
    slot.running = flushing;
    return flushing;
  }

  private async drainShards(shards: BufferShard[]): Promise<FlushReport> {
    await this.warm;
    const startedAt = performance.now();
    const reports: ShardReport[] = await Promise.all(shards.map((shard) => shard.drain()));
    const report: FlushReport = {
      batches: 0,
      recoveredBatches: 0,
      fields: 0,
      documents: 0,
      deadLetters: 0,
      durationMs: 0,
    };
    for (const part of reports) {
      report.batches += part.batches;
      report.recoveredBatches += part.recoveredBatches;
      report.fields += part.fields;
      report.documents += part.documents;
      report.deadLetters += part.deadLetters;
    }
    report.durationMs = performance.now() - startedAt;
    this.retryDelayMs = this.settings.retryDelayMs;
    this.emit('flush', report);
    return report;
  }
}

/**
 * A buffer call that failed on the way: Redis answering with an error ran nothing; a lost connection may
 * have lost only the reply (the call may have run).
 */
function callFailure(error: unknown): BufferUnavailableError {
  const message = error instanceof Error ? error.message : String(error);
  const outcome =
    error instanceof ReplyError
      ? 'Redis rejected the update; it was not buffered'
      : message.startsWith(UNSENT_CALL_ERROR)
        ? 'Redis is not connected; the update was not buffered'
        : 'Redis did not confirm the update; it may or may not be buffered';
  return new BufferUnavailableError(`${outcome}: ${message}`, { cause: error });
}
