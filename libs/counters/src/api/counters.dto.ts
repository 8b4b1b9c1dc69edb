import { createZodDto, ZodValidationException } from 'nestjs-zod';
import { z } from 'zod';
import { MAX_COUNTER_KEY_BYTES, MAX_INCREMENTS_PER_BATCH } from '../counters.constants';

export const counterKeySchema = z
  .string()
  .min(1)
  .refine(
    (key) => Buffer.byteLength(key) <= MAX_COUNTER_KEY_BYTES,
    `must be at most ${MAX_COUNTER_KEY_BYTES} bytes (UTF-8)`,
  )
  .refine((key) => key.isWellFormed(), 'must be well-formed Unicode');

/** One increment: `value` is a safe integer (|value| < 2^53), negative too, so sums stay exact. */
export const incrementSchema = z.strictObject({
  key: counterKeySchema,
  value: z.int(),
});
export class IncrementDto extends createZodDto(incrementSchema) {}

/** Batch form for clients that aggregate: the increments are buffered together in one request. */
export const incrementBatchSchema = z.strictObject({
  increments: z.array(incrementSchema).min(1).max(MAX_INCREMENTS_PER_BATCH),
});
export class IncrementBatchDto extends createZodDto(incrementBatchSchema) {}

export const counterKeyParamsSchema = z.strictObject({ key: counterKeySchema });
export class CounterKeyParamsDto extends createZodDto(counterKeyParamsSchema) {}

export type IncrementRequest = { increments: IncrementDto[]; batch: boolean };

/**
 * Reads a `POST /api/v1/increment` body in either form. The form is chosen by the `increments` field so
 * a bad body gets the errors of the form it meant (naming the field), not a union's "invalid input".
 * A body that passes the hand-written checks below is taken as it is; any other body goes through the
 * zod schemas, so a refused body gets the schemas' errors whatever the checks missed.
 */
export function parseIncrementRequest(body: unknown): IncrementRequest {
  const batch = typeof body === 'object' && body !== null && 'increments' in body;
  const checked = batch ? checkedBatch(body) : checkedIncrement(body);
  if (checked) return { increments: Array.isArray(checked) ? checked : [checked], batch };
  const parsed = (batch ? incrementBatchSchema : incrementSchema).safeParse(body);
  if (!parsed.success) throw new ZodValidationException(parsed.error);
  return batch
    ? { increments: (parsed.data as IncrementBatchDto).increments, batch }
    : { increments: [parsed.data as IncrementDto], batch };
}

/**
 * The increment schema's checks written out (a JSON body's objects are plain): zod builds a result, an
 * issue list and a new object per item, which cost more CPU than the rest of the request. Accepts a
 * subset of what `incrementSchema` accepts, with the same data; undefined leaves the verdict to the schema.
 */
export function checkedIncrement(item: unknown): IncrementDto | undefined {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return undefined;
  const { key, value } = item as Record<string, unknown>;
  if (!Number.isSafeInteger(value) || typeof key !== 'string' || key.length === 0) return undefined;
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short keys need no byte count.
  if (key.length * 3 > MAX_COUNTER_KEY_BYTES && Buffer.byteLength(key) > MAX_COUNTER_KEY_BYTES) return undefined;
  if (!key.isWellFormed() || !hasOnlyOwnFields(item, 'key', 'value')) return undefined;
  return item as IncrementDto;
}

/** `incrementBatchSchema` written out as `checkedIncrement` is, for the batch form's body. */
function checkedBatch(body: object): IncrementDto[] | undefined {
  const { increments } = body as { increments: unknown };
  if (!Array.isArray(increments) || !hasOnlyOwnFields(body, 'increments')) return undefined;
  if (increments.length === 0 || increments.length > MAX_INCREMENTS_PER_BATCH) return undefined;
  for (const item of increments) if (!checkedIncrement(item)) return undefined;
  return increments as IncrementDto[];
}

/** The object's enumerable fields are its own `first` and `second` and nothing else (a strict object's rule). */
function hasOnlyOwnFields(item: object, first: string, second?: string): boolean {
  let fields = 0;
  // for...in, as zod looks for unknown fields: inherited enumerable ones count too.
  for (const name in item) {
    if ((name !== first && name !== second) || !Object.hasOwn(item, name)) return false;
    fields++;
  }
  return fields === (second === undefined ? 1 : 2);
}
