import { createParamDecorator, ExecutionContext } from '@nestjs/common';

/** What ApiKeyGuard records on a request it let through with a configured key. */
export interface TenantRequest {
  /** The tenant id: the first 32 hex digits of the API key's SHA-256. Never the key itself. */
  tenant?: string;
}

/**
 * The caller's tenant, for routes whose data belongs to the API key that created it: the id ApiKeyGuard
 * derived from the request's `x-api-key` (a digest, so neither stores nor logs need the key), or
 * `undefined` when the api runs without API_KEYS (the default tenant).
 */
export const Tenant = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string | undefined =>
    context.switchToHttp().getRequest<TenantRequest>().tenant,
);
