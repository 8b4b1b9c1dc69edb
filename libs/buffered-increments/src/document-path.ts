import { Document, Long } from 'mongodb';

/** The number at a dotted path of a document: an Int64 as a bigint (exact), anything else as a number (0 when absent). */
export function numberAtPath(document: Document | null, path: string): number | bigint {
  let value: unknown = document;
  for (const segment of path.split('.'))
    value = value && typeof value === 'object' ? (value as Document)[segment] : undefined;
  if (value instanceof Long) return value.toBigInt();
  if (typeof value === 'bigint') return value;
  return typeof value === 'number' ? value : Number(value ?? 0);
}
