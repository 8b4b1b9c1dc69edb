import { detachedCopy } from '../inputs/csv-lines';
import type { Origin } from './money';

const UNLISTED_SAMPLE_SIZE = 20;
const ORIGIN_CODES: ReadonlyArray<Origin | null> = [null, 'app_store', 'web'];

/** One user's facts in a build: seconds streamed, and the users-file listing (null when not listed). */
export interface LedgerRow {
  userId: string;
  seconds: number;
  listed: boolean;
  productType: string | null;
  feeCents: number | null;
  origin: Origin | null;
}

/**
 * Per-user facts of one build in columns (typed arrays), so a million users cost tens of megabytes
 * instead of a million objects. Users seen only in the streams file are kept too (listed = false).
 */
export class UserLedger {
  private readonly indexById = new Map<string, number>();
  private readonly productTypes: string[] = [];
  private readonly productIndex = new Map<string, number>();
  private capacity = 1024;
  feeCents = new Float64Array(this.capacity);
  origin = new Uint8Array(this.capacity);
  product = new Uint16Array(this.capacity);
  seconds = new Float64Array(this.capacity);
  /** Valid stream lines per user. */
  streams = new Uint32Array(this.capacity);
  /** The first users added as missing from the users file, in the order they were added. */
  readonly unlistedSample: string[] = [];
  unlistedCount = 0;

  get size(): number {
    return this.indexById.size;
  }

  indexOf(userId: string): number | undefined {
    return this.indexById.get(userId);
  }

  /** Adds a user from the users file; returns false when the id is already listed. */
  addListed(userId: string, productType: string, feeCents: number, origin: Origin): boolean {
    if (this.indexById.has(userId)) return false;
    const i = this.append(userId);
    this.feeCents[i] = feeCents;
    this.origin[i] = ORIGIN_CODES.indexOf(origin);
    let product = this.productIndex.get(productType);
    if (product === undefined) {
      product = this.productTypes.push(detachedCopy(productType)) - 1;
      this.productIndex.set(this.productTypes[product], product);
    }
    this.product[i] = product;
    return true;
  }

  /** Index of a user who streams but is missing from the users file (origin code 0). */
  addUnlisted(userId: string): number {
    const i = this.append(userId);
    this.unlistedCount++;
    if (this.unlistedSample.length < UNLISTED_SAMPLE_SIZE) this.unlistedSample.push(detachedCopy(userId));
    return i;
  }

  /** User ids by index (index i is the i-th user added). */
  ids(): string[] {
    const ids = new Array<string>(this.size);
    for (const [userId, i] of this.indexById) ids[i] = userId;
    return ids;
  }

  row(i: number, userId: string): LedgerRow {
    const listed = this.origin[i] !== 0;
    return {
      userId,
      seconds: this.seconds[i],
      listed,
      productType: listed ? this.productTypes[this.product[i]] : null,
      feeCents: listed ? this.feeCents[i] : null,
      origin: ORIGIN_CODES[this.origin[i]],
    };
  }

  *entries(): IterableIterator<LedgerRow> {
    for (const [userId, i] of this.indexById) yield this.row(i, userId);
  }

  private append(userId: string): number {
    const i = this.indexById.size;
    if (i === this.capacity) this.grow();
    // Ids are kept for the whole build: a copy, so none keeps the input chunk it was read from alive.
    this.indexById.set(detachedCopy(userId), i);
    return i;
  }

  private grow(): void {
    this.capacity *= 2;
    const grown = <T extends Float64Array | Uint8Array | Uint16Array | Uint32Array>(
      old: T,
      make: (n: number) => T,
    ): T => {
      const next = make(this.capacity);
      next.set(old);
      return next;
    };
    this.feeCents = grown(this.feeCents, (n) => new Float64Array(n));
    this.origin = grown(this.origin, (n) => new Uint8Array(n));
    this.product = grown(this.product, (n) => new Uint16Array(n));
    this.seconds = grown(this.seconds, (n) => new Float64Array(n));
    this.streams = grown(this.streams, (n) => new Uint32Array(n));
  }
}
