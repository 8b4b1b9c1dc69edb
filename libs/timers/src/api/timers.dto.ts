import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { TIMER_STATUSES } from '../timer';

const delayPart = z.number().int().nonnegative().default(0);

/**
 * Body of `POST /timers`. The shape is checked here; the limits that come from configuration (longest
 * delay, longest url) and the target rules are checked by TimersService with the same error format.
 */
export const createTimerSchema = z.strictObject({
  hours: delayPart,
  minutes: delayPart,
  seconds: delayPart,
  url: z
    .string()
    .max(8192)
    .pipe(z.url({ protocol: /^https?$/, error: 'must be an absolute http(s) URL' }))
    .refine((value) => {
      // Reached only for a valid URL, but zod runs refinements after non-fatal issues too.
      const url = URL.canParse(value) ? new URL(value) : undefined;
      return !url?.username && !url?.password;
    }, 'must not carry credentials'),
});
export class CreateTimerDto extends createZodDto(createTimerSchema) {}

export const listTimersSchema = z.strictObject({
  status: z.enum(TIMER_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z
    .string()
    .regex(/^[0-9a-f]{24}$/, 'must be a next_cursor value from a previous page')
    .optional(),
});
export class ListTimersQueryDto extends createZodDto(listTimersSchema) {}

/** Optional `Idempotency-Key` header: printable ASCII, at most 255 characters. */
export const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
  .optional();
