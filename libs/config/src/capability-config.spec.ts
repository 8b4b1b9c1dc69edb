import { z } from 'zod';
import { readCapabilityConfig } from './capability-config';

const schema = z.object({
  EXAMPLE_LIMIT: z.coerce.number().int().positive().default(10),
  EXAMPLE_ON: z.stringbool().default(false),
});

describe('readCapabilityConfig', () => {
  it('fills defaults for what the source does not have', () => {
    expect(readCapabilityConfig(schema, () => undefined)).toEqual({ EXAMPLE_LIMIT: 10, EXAMPLE_ON: false });
  });

  it('takes values an app schema already validated as they are, and parses raw strings', () => {
    const validated: Record<string, unknown> = { EXAMPLE_LIMIT: 25, EXAMPLE_ON: true };
    expect(readCapabilityConfig(schema, (key) => validated[key])).toEqual({ EXAMPLE_LIMIT: 25, EXAMPLE_ON: true });
    const raw: Record<string, unknown> = { EXAMPLE_LIMIT: '7', EXAMPLE_ON: 'true' };
    expect(readCapabilityConfig(schema, (key) => raw[key])).toEqual({ EXAMPLE_LIMIT: 7, EXAMPLE_ON: true });
  });

  it('refuses a bad value naming the variable', () => {
    expect(() => readCapabilityConfig(schema, (key) => (key === 'EXAMPLE_LIMIT' ? '-3' : undefined))).toThrow(
      'EXAMPLE_LIMIT',
    );
  });
});
