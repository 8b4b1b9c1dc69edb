import { z } from 'zod';
import { refuseUnsafeSecretsInProduction } from './production-secrets';
import { validatedEnv } from './validated-env';

const settings = z.object({
  NODE_ENV: z.enum(['development', 'production']).default('development'),
  SIGNING_SECRET: z.string().min(16).default('local-dev-signing-secret'),
  PANEL_ENABLED: z.stringbool().default(true),
  PANEL_PASSWORD: z.string().min(1).default('admin'),
});
const validate = validatedEnv(
  refuseUnsafeSecretsInProduction(settings, [
    { name: 'SIGNING_SECRET' },
    { name: 'PANEL_PASSWORD', alsoPublished: ['change-me-please'], inUse: (env) => env.PANEL_ENABLED !== false },
  ]),
);
const strong = 'a-long-random-production-secret';

describe('refuseUnsafeSecretsInProduction', () => {
  it('lets published defaults through outside production', () => {
    expect(validate({})).toMatchObject({ SIGNING_SECRET: 'local-dev-signing-secret', PANEL_PASSWORD: 'admin' });
  });

  it('refuses in production, naming each variable, a secret left at its schema default or another published value', () => {
    expect(() => validate({ NODE_ENV: 'production' })).toThrow(
      /SIGNING_SECRET: is a published default.*\n.*PANEL_PASSWORD: is a published default/s,
    );
    expect(() =>
      validate({ NODE_ENV: 'production', SIGNING_SECRET: strong, PANEL_PASSWORD: 'change-me-please' }),
    ).toThrow(/PANEL_PASSWORD: is a published default/);
  });

  it('refuses in production a secret shorter than 16 characters', () => {
    expect(() =>
      validate({ NODE_ENV: 'production', SIGNING_SECRET: strong, PANEL_PASSWORD: 'fifteen-chars-x' }),
    ).toThrow(/PANEL_PASSWORD: must be at least 16 characters/);
    expect(
      validate({ NODE_ENV: 'production', SIGNING_SECRET: strong, PANEL_PASSWORD: 'sixteen-chars-xy' }).PANEL_PASSWORD,
    ).toBe('sixteen-chars-xy');
  });

  it('does not ask for a secret whose feature is off', () => {
    expect(validate({ NODE_ENV: 'production', SIGNING_SECRET: strong, PANEL_ENABLED: 'false' }).PANEL_PASSWORD).toBe(
      'admin',
    );
  });

  it('refuses, when the schema is made, a secret the schema does not have', () => {
    expect(() => refuseUnsafeSecretsInProduction(settings, [{ name: 'NO_SUCH_SECRET' }])).toThrow(/NO_SUCH_SECRET/);
  });
});
