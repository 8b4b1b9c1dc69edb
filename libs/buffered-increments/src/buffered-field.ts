import { ObjectId } from 'mongodb';
import { InvalidUpdateError } from './errors';

/** `_id` values are used as given: strings stay strings, numbers stay numbers, ObjectIds stay ObjectIds. */
export type DocumentId = string | number | ObjectId;

/** One character per buffered operator; it leads the buffered field name. */
export const OPERATOR = { incInteger: 'i', incDecimal: 'f', max: 'M', min: 'm', set: 's' } as const;
export type OperatorCode = (typeof OPERATOR)[keyof typeof OPERATOR];

/** Limits on what one buffered field may name (UTF-8 bytes); documented in the README. */
export const MAX_ID_BYTES = 512;
export const MAX_FIELD_PATH_BYTES = 512;

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

export interface BufferedField {
  operator: OperatorCode;
  documentId: DocumentId;
  /** The document id as encoded in the field name; equal ids have equal keys. */
  documentKey: string;
  fieldPath: string;
}

/**
 * Buffered field names are `<operator><id type><id length>:<id><field path>`. The length prefix makes
 * every id and path round-trip exactly, whatever characters they hold (`:`, quotes, spaces, non-ASCII).
 */
export function encodeField(operator: OperatorCode, documentKey: string, fieldPath: string): string {
  return `${operator}${documentKey}${fieldPath}`;
}

/** The encoded document id (`<type><length>:<id>`) inside a buffered field name. */
export function documentKeyOfField(name: string): string {
  const colon = name.indexOf(':', 2);
  return name.slice(1, colon + 1 + Number(name.slice(2, colon)));
}

export function decodeField(name: string): BufferedField {
  const operator = name[0] as OperatorCode;
  const idType = name[1];
  const colon = name.indexOf(':', 2);
  const idLength = Number(name.slice(2, colon));
  const idText = name.slice(colon + 1, colon + 1 + idLength);
  const documentKey = name.slice(1, colon + 1 + idLength);
  const fieldPath = name.slice(colon + 1 + idLength);
  return { operator, documentId: decodeId(idType, idText), documentKey, fieldPath };
}

/** Validates a document id and returns its encoded key (`<type><length>:<text>`). */
export function documentKeyOf(id: unknown): string {
  if (typeof id === 'string') {
    if (id.length === 0) throw new InvalidUpdateError('documentId must not be empty');
    if (!id.isWellFormed()) throw new InvalidUpdateError('documentId must be well-formed Unicode');
    // A UTF-16 unit is at most 3 UTF-8 bytes: short ids need no byte count.
    if (id.length * 3 > MAX_ID_BYTES && Buffer.byteLength(id) > MAX_ID_BYTES)
      throw new InvalidUpdateError(`documentId must be at most ${MAX_ID_BYTES} bytes`);
    return `s${id.length}:${id}`;
  }
  if (typeof id === 'number') {
    if (!Number.isFinite(id)) throw new InvalidUpdateError('documentId must be a finite number');
    const text = String(id);
    return `n${text.length}:${text}`;
  }
  if (id instanceof ObjectId) {
    const text = id.toHexString();
    return `o${text.length}:${text}`;
  }
  throw new InvalidUpdateError('documentId must be a non-empty string, a finite number or an ObjectId');
}

function decodeId(idType: string, text: string): DocumentId {
  if (idType === 's') return text;
  if (idType === 'n') return Number(text);
  if (idType === 'o') return new ObjectId(text);
  throw new Error(`unknown document id type '${idType}' in a buffered field`);
}

/** Validates a dotted field path (`stats.totalCU`) for use in a MongoDB update. */
export function assertFieldPath(
  fieldPath: unknown,
  reserved: ReadonlyArray<string | false>,
): asserts fieldPath is string {
  if (typeof fieldPath !== 'string' || fieldPath.length === 0) {
    throw new InvalidUpdateError('fieldPath must be a non-empty string');
  }
  if (!fieldPath.isWellFormed() || fieldPath.includes('\0')) {
    throw new InvalidUpdateError('fieldPath must be well-formed Unicode without NUL characters');
  }
  if (Buffer.byteLength(fieldPath) > MAX_FIELD_PATH_BYTES) {
    throw new InvalidUpdateError(`fieldPath must be at most ${MAX_FIELD_PATH_BYTES} bytes`);
  }
  const segments = fieldPath.split('.');
  for (const segment of segments) {
    if (segment.length === 0) throw new InvalidUpdateError(`fieldPath '${fieldPath}' has an empty segment`);
    if (segment.startsWith('$'))
      throw new InvalidUpdateError(`fieldPath '${fieldPath}' has a segment starting with '$'`);
    if (FORBIDDEN_SEGMENTS.has(segment))
      throw new InvalidUpdateError(`fieldPath '${fieldPath}' uses the reserved name '${segment}'`);
  }
  if (segments[0] === '_id') throw new InvalidUpdateError('fieldPath must not update _id');
  if (reserved.includes(segments[0])) {
    throw new InvalidUpdateError(`fieldPath must not touch '${segments[0]}', an idempotency marker field`);
  }
}
