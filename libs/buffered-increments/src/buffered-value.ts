import { BSON, Long } from 'mongodb';
import { InvalidUpdateError } from './errors';
import { OPERATOR } from './buffered-field';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
/** Largest `$set` value accepted, as EJSON bytes; documented in the README. */
export const MAX_SET_VALUE_BYTES = 64 * 1024;

/**
 * Integer deltas (safe-integer numbers, or bigints within signed 64 bits) are summed exactly by Redis
 * HINCRBY. Non-integer deltas are accepted as doubles and summed apart by HINCRBYFLOAT, never truncated.
 */
export function encodeDelta(delta: unknown): { operator: 'i' | 'f'; value: string } {
  if (typeof delta === 'bigint') {
    if (delta < INT64_MIN || delta > INT64_MAX)
      throw new InvalidUpdateError('delta must fit in a signed 64-bit integer');
    return { operator: OPERATOR.incInteger, value: delta.toString() };
  }
  if (typeof delta !== 'number' || !Number.isFinite(delta)) {
    throw new InvalidUpdateError('delta must be a finite number or a bigint');
  }
  if (Number.isInteger(delta)) {
    if (!Number.isSafeInteger(delta)) {
      throw new InvalidUpdateError('delta is an unsafe integer (past 2^53): pass it as a bigint to keep it exact');
    }
    return { operator: OPERATOR.incInteger, value: String(delta) };
  }
  return { operator: OPERATOR.incDecimal, value: String(delta) };
}

/** `$max` / `$min` values: finite numbers or valid Dates, tagged so Redis compares like with like. */
export function encodeComparable(value: unknown): string {
  if (typeof value === 'number' && Number.isFinite(value)) return `n${value}`;
  if (value instanceof Date && !Number.isNaN(value.getTime())) return `d${value.getTime()}`;
  throw new InvalidUpdateError('value for max/min must be a finite number or a valid Date');
}

export function encodeSetValue(value: unknown): string {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    throw new InvalidUpdateError('value for set must be a BSON-serialisable value');
  }
  let text: string;
  try {
    text = BSON.EJSON.stringify({ v: value }, { relaxed: false });
  } catch (error) {
    throw new InvalidUpdateError(`value for set is not BSON-serialisable: ${(error as Error).message}`);
  }
  if (Buffer.byteLength(text) > MAX_SET_VALUE_BYTES) {
    throw new InvalidUpdateError(`value for set must be at most ${MAX_SET_VALUE_BYTES} bytes as EJSON`);
  }
  return text;
}

/** The `$inc` amount for a field, from its buffered integer and non-integer sums. */
export function decodeIncrement(integerSum: string | undefined, decimalSum: string | undefined): number | Long {
  if (decimalSum !== undefined) return Number(integerSum ?? 0) + Number(decimalSum);
  const exact = BigInt(integerSum as string);
  // The driver writes a JS number outside 32 bits as a double, which turns the counter into a double
  // that rounds past 2^53 from then on; such sums go as Int64, so the field stays an exact integer.
  if (exact > INT32_MAX || exact < INT32_MIN) return Long.fromBigInt(exact);
  return Number(exact);
}

export function decodeComparable(text: string): number | Date {
  return text[0] === 'd' ? new Date(Number(text.slice(1))) : Number(text.slice(1));
}

export function decodeSetValue(text: string): unknown {
  return (BSON.EJSON.parse(text, { relaxed: false }) as { v: unknown }).v;
}

/**
 * A buffered `$set` value: `<call order>|<EJSON>`, the order numbering the `$set`s of one batch (the
 * buffer script adds it). Values buffered by versions without it have order 0.
 */
export function decodeOrderedSetValue(text: string): { order: number; value: unknown } {
  const bar = text.indexOf('|');
  if (text[0] === '{' || bar === -1) return { order: 0, value: decodeSetValue(text) };
  return { order: Number(text.slice(0, bar)), value: decodeSetValue(text.slice(bar + 1)) };
}
