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
 */
export function parseIncrementRequest(body: unknown): IncrementRequest {
  const batch = typeof body === 'object' && body !== null && 'increments' in body;
  const parsed = (batch ? incrementBatchSchema : incrementSchema).safeParse(body);
  if (!parsed.success) throw new ZodValidationException(parsed.error);
  return batch
    ? { increments: (parsed.data as IncrementBatchDto).increments, batch }
    : { increments: [parsed.data as IncrementDto], batch };
}
