import { randomBytes, randomUUID } from 'node:crypto';
import { Collection, Document } from 'mongodb';
import { ApplyResult, BatchApplier, DeadLetter } from './batch-applier';
import { DocumentId } from './buffered-field';
import { numberAtPath } from './document-path';
import { BufferKeys, completeMarker, legacyCompleteMarker, SET_ORDER_FIELD, SINCE_FIELD } from './buffer-keys';
import { ClaimDurability } from './claim-durability';
import { FlushLockLostError } from './errors';
import { answeredWithin } from './mongo-errors';
import { packStrings } from './packed-arguments';
import { join } from 'node:path';
import { RedisLike, RedisScript } from '@bufferq/redis-scripts';

const script = (file: string) => new RedisScript(join(__dirname, 'scripts', file), { SINCE_FIELD, SET_ORDER_FIELD });
export const SCRIPTS = {
  bufferUpdates: script('buffer-updates-4.lua'),
  claimBatch: script('claim-batch-8.lua'),
  finishBatch: script('finish-batch-4.lua'),
  extendLock: script('extend-lock-1.lua'),
  releaseLock: script('release-lock-1.lua'),
};

/** A buffer call's answer: the live hash's length; outcomes per update only when one was refused. */
export interface BufferCallReply {
  length: number;
  outcomes?: Array<number | string>;
}

/** What one shard's drain did; a flush adds these up. */
export interface ShardReport {
  batches: number;
  recoveredBatches: number;
  fields: number;
  documents: number;
  deadLetters: number;
}

/** What a shard needs from the buffer it belongs to. */
export interface ShardContext {
  redis: RedisLike;
  applier: BatchApplier;
  durability: ClaimDurability;
  collection: Collection<Document>;
  settings: {
    lockLeaseMs: number;
    readChunkSize: number;
    maxBatchFields: number;
    maxDeadLetters: number;
    bufferLimitFields: number;
    marker: string | false;
    legacyMarker: string;
  };
  /** Called for each dead letter once it is recorded. */
  onDeadLetter(letter: DeadLetter): void;
}

type ClaimReply =
  ['busy', number] | ['empty'] | ['recovered' | 'taken', string, number, string[], string, string, number];

/**
 * One slice of a buffer: its own Redis keys (one Cluster slot), lock, batch sequence and claims. A
 * document always lives in the same shard, so everything exact about one document is decided within
 * one shard; shards flush independently and in parallel.
 */
export class BufferShard {
  private lockRenewedAt = -Infinity;

  constructor(
    readonly keys: BufferKeys,
    private readonly context: ShardContext,
  ) {}

  /**
   * Runs one buffer call: `updates` as buffered field, value pairs (the field names its operator), or
   * as runs of one value (`runs`: value, count, fields...; `increments` when every field is an integer
   * `$inc`), numbered `call` by the producer instance
   * `callerId` so a re-sent call is a no-op; `atomic` (`atomic-runs`) buffers all of them or none. The
   * updates travel as one packed argument. Returns the live hash's length and, when some update was
   * refused, one outcome per update (0 = buffered, else the refusal); no outcomes means every update was
   * buffered.
   */
  async buffer(
    callerId: string,
    call: number,
    updates: string[],
    mode: 'updates' | 'runs' | 'increments' | 'atomic' | 'atomic-runs' = 'updates',
  ): Promise<BufferCallReply> {
    // Written directly: the producer gathers its calls itself and sends the next while Redis runs one.
    const reply = await SCRIPTS.bufferUpdates.run<Array<number | string>>(
      this.context.redis,
      [this.keys.live, this.keys.caller(callerId), this.keys.deadLetters, this.keys.callerRing(callerId)],
      [call, this.context.settings.bufferLimitFields, mode, packStrings(updates)],
      { direct: true },
    );
    const length = Number(reply[0]);
    if (reply[1] === 'replayed') return { length, outcomes: replayedOutcomes(reply[2]) };
    return reply.length === 1 ? { length } : { length, outcomes: reply.slice(1) };
  }

  /** Applies every batch of this shard that waited when the drain started (and one more). */
  async drain(): Promise<ShardReport> {
    const { redis, durability, applier, settings } = this.context;
    const token = randomUUID();
    const report: ShardReport = { batches: 0, recoveredBatches: 0, fields: 0, documents: 0, deadLetters: 0 };
    let waitMs = 2;
    const waitDeadline = Date.now() + 2 * settings.lockLeaseMs;
    // A backlog comes out in batches of at most maxBatchFields; one drain takes what waited when it
    // started (and one more batch), not what producers keep adding meanwhile.
    let batchesLeft = Infinity;
    try {
      while (batchesLeft-- > 0) {
        const claim = await SCRIPTS.claimBatch.run<ClaimReply>(
          redis,
          [
            this.keys.lock,
            this.keys.live,
            this.keys.draining,
            this.keys.drainingBatchId,
            this.keys.batchSequence,
            this.keys.scope,
            this.keys.drainingFormat,
            this.keys.cutCursor,
          ],
          [
            token,
            settings.lockLeaseMs,
            settings.readChunkSize,
            settings.maxBatchFields,
            randomBytes(6).toString('hex'),
          ],
        );
        if (claim[0] === 'empty') break;
        if (claim[0] === 'busy') {
          // Another flusher holds the lock: wait for it (one flush, or the lease if it died), then take
          // what arrived after its claim.
          if (Date.now() > waitDeadline) throw new Error(`flush lock of ${this.keys.lock} stayed busy`);
          await sleep(Math.min(waitMs, Math.max(1, claim[1])));
          waitMs = Math.min(waitMs * 2, 50);
          batchesLeft += 1;
          continue;
        }
        this.lockRenewedAt = performance.now();
        const [state, batchId, fieldCount, inline, scope, format, leftLive] = claim;
        // Nothing reaches MongoDB before Redis can no longer lose the claim (AOF, replicas as configured).
        await durability.confirm(this.keys.lock, durability.connectionOf(this.keys.lock));
        const entries = fieldCount === inline.length / 2 ? pairs(inline) : await this.readBatch(token);
        const applied: ApplyResult = await applier.apply(
          { id: batchId, scope, format: Number(format), entries },
          () => this.keepLock(token),
          (letters) => this.recordDeadLetters(letters),
        );
        const last = state === 'taken' && (leftLive === 0 || batchesLeft === 0);
        await SCRIPTS.finishBatch.run(
          redis,
          [this.keys.lock, this.keys.draining, this.keys.drainingBatchId, this.keys.drainingFormat],
          [token, batchId, last ? 1 : 0],
        );
        report.batches += 1;
        report.recoveredBatches += state === 'recovered' ? 1 : 0;
        report.fields += applied.fields;
        report.documents += applied.documents;
        report.deadLetters += applied.deadLetters.length;
        if (last) break;
        // A recovered batch came first, or a backlog is cut in parts: take the next.
        if (state === 'taken' && batchesLeft === Infinity) batchesLeft = Math.ceil(leftLive / settings.maxBatchFields);
      }
    } finally {
      await this.releaseLock(token);
    }
    return report;
  }

  /**
   * Releases the flush lock once a drain ended. When Redis cannot be reached then (a failover or restart
   * under way: what made the drain fail, often), the release is tried again in the background until it
   * succeeds or the lease has lapsed anyway: the next flush, here or in another process, then goes on as
   * soon as Redis is back instead of waiting out the lease (30 s by default) of a lock nobody holds. The
   * lock is released only while it still holds this drain's token.
   */
  private async releaseLock(token: string): Promise<void> {
    const released = () =>
      SCRIPTS.releaseLock.run(this.context.redis, [this.keys.lock], [token]).then(
        () => true,
        () => false,
      );
    if (await released()) return;
    const lapsesAt = Date.now() + this.context.settings.lockLeaseMs;
    void (async () => {
      for (let delayMs = 50; Date.now() < lapsesAt; delayMs = Math.min(delayMs * 2, 1_000)) {
        await sleep(delayMs, { keepProcessAlive: false });
        if (await released()) return;
      }
    })();
  }

  /** Buffered fields (live and draining) and when the oldest pending update arrived, by this shard's server clock. */
  async stats(): Promise<{ bufferedFields: number; oldestPendingAgeMs: number }> {
    const [[, live], [, draining], [, liveBookkeeping], [, drainingBookkeeping], [, time]] = (await this.context.redis
      .multi()
      .hlen(this.keys.live)
      .hlen(this.keys.draining)
      .hmget(this.keys.live, SINCE_FIELD, SET_ORDER_FIELD)
      .hmget(this.keys.draining, SINCE_FIELD, SET_ORDER_FIELD)
      .time()
      .exec()) as Array<[Error | null, unknown]>;
    const [seconds, micros] = time as [string, string];
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const since = [(liveBookkeeping as Array<string | null>)[0], (drainingBookkeeping as Array<string | null>)[0]]
      .filter((value): value is string => typeof value === 'string')
      .map(Number);
    const countOf = (fields: unknown, bookkeeping: unknown) =>
      Math.max(0, Number(fields) - (bookkeeping as Array<string | null>).filter((value) => value !== null).length);
    return {
      bufferedFields: countOf(live, liveBookkeeping) + countOf(draining, drainingBookkeeping),
      oldestPendingAgeMs: since.length ? Math.max(0, now - Math.min(...since)) : 0,
    };
  }

  /** MongoDB's value at `fieldPath` and what this shard still buffers for it (see the buffer's readIncremented). */
  async readIncremented(
    documentId: DocumentId,
    fieldPath: string,
    bufferedFields: [integerField: string, decimalField: string],
  ): Promise<{ stored: number | bigint; pendingIntegers: bigint; pendingDecimals: number }> {
    const { redis, collection, settings } = this.context;
    for (let attempt = 0; ; attempt++) {
      const [[, sequence], [, drainingId], [, format], [, scope], [, live], [, draining]] = (await redis
        .multi()
        .get(this.keys.batchSequence)
        .get(this.keys.drainingBatchId)
        .get(this.keys.drainingFormat)
        .get(this.keys.scope)
        .hmget(this.keys.live, ...bufferedFields)
        .hmget(this.keys.draining, ...bufferedFields)
        .exec()) as Array<[Error | null, unknown]>;
      const legacy = drainingId !== null && format === null;
      const markerPath = settings.marker ? (legacy ? settings.legacyMarker : `${settings.marker}.${scope}`) : undefined;
      const projection = { [fieldPath]: 1, ...(markerPath ? { [markerPath]: 1 } : {}) };
      const document = await answeredWithin(
        collection.findOne({ _id: documentId as never }, { projection }),
        settings.lockLeaseMs,
        `a findOne of ${collection.collectionName}`,
      );
      const sequenceAfter = await redis.get(this.keys.batchSequence);
      // A batch claimed between the two Redis reads may be in MongoDB but not in what we read: read again.
      if (sequenceAfter !== sequence && attempt < 10) continue;
      const appliedMarker = markerPath ? Number(numberAtPath(document, markerPath)) : -1;
      const complete =
        drainingId === null
          ? Infinity
          : legacy
            ? legacyCompleteMarker(drainingId as string)
            : completeMarker(drainingId as string);
      const drainingApplied = document !== null && markerPath !== undefined && appliedMarker >= complete;
      const buffered = [live, ...(drainingApplied ? [] : [draining])] as Array<Array<string | null>>;
      return {
        stored: numberAtPath(document, fieldPath),
        pendingIntegers: buffered.reduce((sum, [integer]) => sum + (integer === null ? 0n : BigInt(integer)), 0n),
        pendingDecimals: buffered.reduce((sum, [, decimal]) => sum + (decimal === null ? 0 : Number(decimal)), 0),
      };
    }
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const texts = await this.context.redis.lrange(this.keys.deadLetters, 0, limit - 1);
    return texts.map((text) => JSON.parse(text) as DeadLetter);
  }

  deadLetterCount(): Promise<number> {
    return this.context.redis.llen(this.keys.deadLetters);
  }

  /** Moves up to `limit` dead letters back into the live hash; returns how many were buffered again. */
  async replayDeadLetters(callerId: string, limit: number): Promise<number> {
    const reply = await SCRIPTS.bufferUpdates.run<Array<number | string>>(
      this.context.redis,
      [this.keys.live, this.keys.caller(callerId), this.keys.deadLetters, this.keys.callerRing(callerId)],
      [0, this.context.settings.bufferLimitFields, 'replay', limit],
    );
    return reply.slice(1).filter((kept) => kept === 0).length;
  }

  async dropDeadLetters(): Promise<void> {
    await this.context.redis.del(this.keys.deadLetters);
  }

  /**
   * Reads a large draining batch in HSCAN steps, so Redis is never blocked by one huge reply. Each step
   * renews the flush lock: the lease only has to outlast one step or one bulkWrite, not the whole flush.
   */
  private async readBatch(token: string): Promise<Array<[string, string]>> {
    const entries: Array<[string, string]> = [];
    let cursor = '0';
    do {
      const [next, flat] = await this.context.redis.hscan(
        this.keys.draining,
        cursor,
        'COUNT',
        this.context.settings.readChunkSize,
      );
      for (let i = 0; i < flat.length; i += 2) entries.push([flat[i], flat[i + 1]]);
      cursor = next;
      await this.keepLock(token);
    } while (cursor !== '0');
    return entries;
  }

  private async keepLock(token: string): Promise<void> {
    const { lockLeaseMs } = this.context.settings;
    // Renewed a moment ago (or just claimed): it cannot have lapsed, so save the round trip.
    if (performance.now() - this.lockRenewedAt < lockLeaseMs / 4) return;
    this.lockRenewedAt = performance.now();
    const kept = await SCRIPTS.extendLock.run<number>(this.context.redis, [this.keys.lock], [token, lockLeaseMs]);
    if (kept !== 1)
      throw new FlushLockLostError(`flush of ${this.keys.lock} lost its lock; another flusher took the batch over`);
  }

  private async recordDeadLetters(deadLetters: DeadLetter[]): Promise<void> {
    if (deadLetters.length === 0) return;
    await this.context.redis
      .multi()
      .rpush(this.keys.deadLetters, ...deadLetters.map((letter) => JSON.stringify(letter)))
      .ltrim(this.keys.deadLetters, -this.context.settings.maxDeadLetters, -1)
      .exec();
    for (const letter of deadLetters) this.context.onDeadLetter(letter);
  }
}

/** Outcomes of a call that had run already: refusals as its first run answered them, else none (all buffered). */
function replayedOutcomes(firstRun: number | string | undefined): Array<number | string> | undefined {
  if (typeof firstRun === 'string' && firstRun.length > 0) return JSON.parse(firstRun) as Array<number | string>;
  return undefined;
}

function pairs(flat: string[]): Array<[string, string]> {
  const result: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) result.push([flat[i], flat[i + 1]]);
  return result;
}

const sleep = (ms: number, { keepProcessAlive = true } = {}) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (!keepProcessAlive) timer.unref();
  });
