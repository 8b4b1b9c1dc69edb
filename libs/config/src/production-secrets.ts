import type { z } from 'zod';

/** Shortest secret accepted in production. */
export const PRODUCTION_SECRET_MIN_LENGTH = 16;

/** A secret that must not reach production with a value anyone can read in this repository. */
export interface ProductionSecret {
  /** The environment variable holding it; its schema default counts as published. */
  name: string;
  /** Other values published with the code (examples, earlier defaults). */
  alsoPublished?: readonly string[];
  /** Whether the secret guards anything in this configuration (its feature is on); always when absent. */
  inUse?: (env: Record<string, unknown>) => boolean;
}

/**
 * The app's env schema, refined: with NODE_ENV=production every secret in use must be at least
 * PRODUCTION_SECRET_MIN_LENGTH characters and none of its published values (its schema default
 * included), so a deployment that forgot to set one fails at boot naming the variable, instead of
 * running with a password from the README.
 */
export function refuseUnsafeSecretsInProduction<T extends z.ZodObject>(
  schema: T,
  secrets: readonly ProductionSecret[],
): T {
  const published = new Map(
    secrets.map((secret) => [secret.name, [...defaultOf(schema, secret.name), ...(secret.alsoPublished ?? [])]]),
  );
  return schema.superRefine((env: Record<string, unknown>, ctx) => {
    if (env.NODE_ENV !== 'production') return;
    for (const secret of secrets) {
      if (secret.inUse && !secret.inUse(env)) continue;
      const value = env[secret.name];
      if (typeof value !== 'string' || published.get(secret.name)!.includes(value)) {
        ctx.addIssue({
          code: 'custom',
          path: [secret.name],
          message: 'is a published default; set a secret of your own in production',
        });
      } else if (value.length < PRODUCTION_SECRET_MIN_LENGTH) {
        ctx.addIssue({
          code: 'custom',
          path: [secret.name],
          message: `must be at least ${PRODUCTION_SECRET_MIN_LENGTH} characters in production`,
        });
      }
    }
  });
}

function defaultOf(schema: z.ZodObject, name: string): string[] {
  const field = schema.shape[name] as z.ZodType | undefined;
  if (!field) throw new Error(`refuseUnsafeSecretsInProduction: the env schema has no ${name}`);
  const filled = field.safeParse(undefined);
  return filled.success && typeof filled.data === 'string' ? [filled.data] : [];
}
