import { z } from 'zod';

/**
 * Builds the `validate` function for `ConfigModule.forRoot`: parses the environment with the app's zod
 * schema, fills defaults, and fails boot with one message naming every bad variable.
 */
export function validatedEnv<T extends z.ZodType>(schema: T) {
  return (raw: Record<string, unknown>): z.infer<T> => {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
      throw new Error(`Invalid environment:\n  ${problems.join('\n  ')}`);
    }
    return parsed.data;
  };
}
