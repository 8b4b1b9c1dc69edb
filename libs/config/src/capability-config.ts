import { Provider } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { z } from 'zod';

/**
 * The one way a lib gets its settings: a zod schema of its environment variables (the app's env schema
 * extends with its shape, so boot fails on a bad value) and a provider of the typed, defaulted object
 * under the lib's token, read through ConfigService. A value the app did not validate (a lib used
 * outside our apps, a test module without ConfigModule validation) is parsed here with the same schema.
 * Nothing reads `process.env` at import time.
 */
export function capabilityConfigProvider<S extends z.ZodObject>(token: symbol, schema: S): Provider {
  return {
    provide: token,
    inject: [ConfigService],
    useFactory: (config: ConfigService): z.infer<S> => readCapabilityConfig(schema, (key) => config.get(key)),
  };
}

/**
 * The lib's settings from any source of values (ConfigService, a plain env). A value that is not a string
 * was already validated by the app's schema and is taken as it is (parsing it again would fail: a
 * `stringbool` is a boolean by then); strings and gaps are parsed here, defaults filled.
 */
export function readCapabilityConfig<S extends z.ZodObject>(schema: S, read: (key: string) => unknown): z.infer<S> {
  const values = Object.keys(schema.shape).map((key) => [key, read(key)] as const);
  const validated = values.filter(([, value]) => value !== undefined && typeof value !== 'string');
  const raw = values.filter(([, value]) => typeof value === 'string');
  const unvalidated = schema.omit(Object.fromEntries(validated.map(([key]) => [key, true])) as never);
  const parsed = unvalidated.parse(Object.fromEntries(raw)) as Record<string, unknown>;
  return { ...parsed, ...Object.fromEntries(validated) } as z.infer<S>;
}
