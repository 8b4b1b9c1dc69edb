/**
 * What the fuzzer's increments should have added, per counter key: the values of every request the
 * api accepted (2xx), read from the very bytes that were sent, the way the api's JSON parser reads them.
 * A rejected request (4xx) must have added nothing. A request that got no answer, a 5xx, or that
 * smuggled a second message may or may not have been applied: its keys are left out of the exact check.
 */
import type { FuzzResponse } from './http-sender';
import type { FuzzRequest } from './request-generator';

export interface StoredCounters {
  /** MongoDB's value per key (Int64 read as bigint), after the buffer drained. */
  values: Map<string, bigint | number>;
  /**
   * Amounts set aside as dead letters per key: accepted, refused by MongoDB (a sum past Int64), kept
   * for replay. Accounted, not lost: stored + dead-lettered must equal what was accepted.
   */
  deadLettered?: Map<string, bigint>;
}

export interface IncrementAudit {
  /** Requests to POST /api/v1/increment by outcome. */
  accepted: number;
  rejected: number;
  ambiguous: number;
  /** Increments (key, value pairs) in accepted requests, and their sum. */
  acceptedIncrements: number;
  acceptedSum: string;
  keys: number;
  /** Keys checked exactly (no ambiguous request touched them). */
  exactKeys: number;
  /** Keys whose stored value differs from what was accepted: lost, doubled or applied though rejected. */
  mismatches: Array<{
    key: string;
    expected: string;
    stored: string;
    acceptedPairs: number;
    rejectedPairs: number;
    /** The key's accepted increments are large enough for a running sum to pass 2^53 in some order. */
    pastSafeIntegers: boolean;
  }>;
  /** Batches refused (400) because one of their increments would overflow the 64-bit buffered sum, while they named other keys too. */
  overflowRefusedMixedBatches: number;
  /** Keys whose stored value is not in the range the ambiguous requests allow. */
  ambiguousMismatches: Array<{ key: string; stored: string; low: string; high: string }>;
  /** Documents in the counters collection under a key no request named. */
  phantoms: Array<{ key: string; stored: string }>;
  /** Accepted requests whose answer does not say what was sent (echo of `{ key, value }`, `accepted: n`). */
  wrongAnswers: Array<{ index: number; sent: string; answer: string }>;
}

interface KeyEntry {
  expected: bigint;
  /** Sums of the accepted positive and negative increments: bounds of every running sum, whatever the order. */
  positive: bigint;
  negative: bigint;
  /** Sums of the negative and positive parts of ambiguous increments: the stored value may be off by any subset. */
  ambiguousLow: bigint;
  ambiguousHigh: bigint;
  ambiguous: boolean;
  acceptedPairs: number;
  rejectedPairs: number;
}

/** `{ key, value }` or `{ increments: [...] }` as the api would read the body; undefined when it is neither. */
export function incrementsIn(
  bodyText: string,
): { increments: Array<{ key: unknown; value: unknown }>; batch: boolean } | undefined {
  let body: unknown;
  try {
    // Fastify's JSON parser drops a leading byte order mark.
    body = JSON.parse(bodyText.replace(/^\ufeff/, ''));
  } catch {
    return undefined;
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  if ('increments' in body) {
    const list = (body as { increments: unknown }).increments;
    return Array.isArray(list)
      ? {
          increments: list.map((item) =>
            item !== null && typeof item === 'object' ? item : { key: undefined, value: undefined },
          ),
          batch: true,
        }
      : undefined;
  }
  return { increments: [body as { key: unknown; value: unknown }], batch: false };
}

export class IncrementLedger {
  private readonly keys = new Map<string, KeyEntry>();
  private accepted = 0;
  private rejected = 0;
  private ambiguous = 0;
  private acceptedIncrements = 0;
  private acceptedSum = 0n;
  private overflowRefusedMixedBatches = 0;
  private readonly wrongAnswers: IncrementAudit['wrongAnswers'] = [];

  record(request: FuzzRequest, response: FuzzResponse): void {
    if (!request.increment) return;
    const parsed = incrementsIn(request.increment.bodyText);
    const pairs = (parsed?.increments ?? []).filter(
      (pair): pair is { key: string; value: unknown } => typeof pair.key === 'string',
    );
    const status = response.status;
    const outcome =
      status !== undefined && status >= 200 && status < 300
        ? 'accepted'
        : status !== undefined && status >= 400 && status < 500 && !request.increment.smuggled
          ? 'rejected'
          : 'ambiguous';
    this[outcome] += 1;
    for (const { key, value } of pairs) {
      const entry = this.entry(key);
      const amount = typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : undefined;
      if (outcome === 'accepted') {
        entry.acceptedPairs += 1;
        if (amount === undefined) {
          // Accepted, yet not an integer the fuzzer can add: the answer check below reports it.
          entry.ambiguous = true;
          continue;
        }
        entry.expected += amount;
        if (amount > 0n) entry.positive += amount;
        else entry.negative += amount;
        this.acceptedIncrements += 1;
        this.acceptedSum += amount;
      } else if (outcome === 'rejected') {
        entry.rejectedPairs += 1;
      } else {
        entry.ambiguous = true;
        if (amount !== undefined) {
          if (amount < 0n) entry.ambiguousLow += amount;
          else entry.ambiguousHigh += amount;
        }
      }
    }
    if (outcome === 'accepted') this.checkAnswer(request, response, parsed);
    if (
      outcome === 'rejected' &&
      parsed?.batch &&
      /overflow/.test(response.body) &&
      new Set(pairs.map(({ key }) => key)).size > 1
    )
      this.overflowRefusedMixedBatches += 1;
  }

  /** Every key any increment request named, accepted or not. */
  touchedKeys(): string[] {
    return [...this.keys.keys()];
  }

  /** Keys an accepted request named, with their expected sums. */
  expectedValues(): Map<string, bigint> {
    return new Map(
      [...this.keys]
        .filter(([, entry]) => entry.acceptedPairs > 0 && !entry.ambiguous)
        .map(([key, entry]) => [key, entry.expected]),
    );
  }

  audit(stored: StoredCounters): IncrementAudit {
    const mismatches: IncrementAudit['mismatches'] = [];
    const ambiguousMismatches: IncrementAudit['ambiguousMismatches'] = [];
    let exactKeys = 0;
    for (const [key, entry] of this.keys) {
      const value = stored.values.get(key);
      const asideValue = stored.deadLettered?.get(key) ?? 0n;
      const mongoValue =
        value === undefined
          ? 0n
          : typeof value === 'bigint'
            ? value
            : Number.isInteger(value)
              ? BigInt(value)
              : undefined;
      const storedValue = mongoValue === undefined ? undefined : mongoValue + asideValue;
      if (!entry.ambiguous) {
        exactKeys += 1;
        if (storedValue !== entry.expected) {
          const pastSafeIntegers =
            entry.positive > BigInt(Number.MAX_SAFE_INTEGER) || entry.negative < BigInt(Number.MIN_SAFE_INTEGER);
          mismatches.push({
            key,
            expected: String(entry.expected),
            stored: String(value ?? 'none'),
            acceptedPairs: entry.acceptedPairs,
            rejectedPairs: entry.rejectedPairs,
            pastSafeIntegers,
          });
        }
      } else {
        const low = entry.expected + entry.ambiguousLow;
        const high = entry.expected + entry.ambiguousHigh;
        if (storedValue === undefined || storedValue < low || storedValue > high)
          ambiguousMismatches.push({
            key,
            stored: String(value ?? 'none'),
            low: String(low),
            high: String(high),
          });
      }
    }
    const phantoms = [...stored.values]
      .filter(([key]) => !this.keys.has(key))
      .map(([key, value]) => ({ key, stored: String(value) }));
    return {
      accepted: this.accepted,
      rejected: this.rejected,
      ambiguous: this.ambiguous,
      acceptedIncrements: this.acceptedIncrements,
      acceptedSum: String(this.acceptedSum),
      keys: this.keys.size,
      exactKeys,
      mismatches,
      ambiguousMismatches,
      phantoms,
      wrongAnswers: this.wrongAnswers,
      overflowRefusedMixedBatches: this.overflowRefusedMixedBatches,
    };
  }

  private checkAnswer(request: FuzzRequest, response: FuzzResponse, parsed: ReturnType<typeof incrementsIn>): void {
    let answer: unknown;
    try {
      answer = JSON.parse(response.body);
    } catch {
      answer = undefined;
    }
    const sent = request.increment!.bodyText;
    const integers = parsed?.increments.every(
      ({ key, value }) => typeof key === 'string' && typeof value === 'number' && Number.isSafeInteger(value),
    );
    const echoed = (answer ?? {}) as { key?: unknown; value?: unknown; accepted?: unknown };
    const right =
      !parsed || !integers
        ? false
        : parsed.batch
          ? echoed.accepted === parsed.increments.length
          : echoed.key === parsed.increments[0].key && echoed.value === parsed.increments[0].value;
    if (!right && this.wrongAnswers.length < 50)
      this.wrongAnswers.push({
        index: request.index,
        sent: sent.slice(0, 300),
        answer: response.body.slice(0, 300),
      });
  }

  private entry(key: string): KeyEntry {
    let entry = this.keys.get(key);
    if (!entry) {
      entry = {
        expected: 0n,
        positive: 0n,
        negative: 0n,
        ambiguousLow: 0n,
        ambiguousHigh: 0n,
        ambiguous: false,
        acceptedPairs: 0,
        rejectedPairs: 0,
      };
      this.keys.set(key, entry);
    }
    return entry;
  }
}
