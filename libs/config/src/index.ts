// Configuration, done one way in every lib and app: zod schemas of environment variables, validated once
// at boot by ConfigModule, and a typed settings object per lib injected under the lib's token.
export { validatedEnv } from './validated-env';
export { capabilityConfigProvider, readCapabilityConfig } from './capability-config';
export { refuseUnsafeSecretsInProduction } from './production-secrets';
export type { ProductionSecret } from './production-secrets';
