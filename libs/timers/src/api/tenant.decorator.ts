import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { TenantId } from '../timer';

/**
 * The caller's tenant: `request.tenant` as the api's access guard (ApiKeyGuard) set it for a request with
 * a configured API key (a digest of the key, never the key), or `undefined` (the default tenant) when the
 * api runs without API_KEYS. Read from the request rather than imported from the operations lib, so the
 * timers lib (and the worker, which loads it) does not depend on the api's access stack.
 */
export const Tenant = createParamDecorator(
  (_data: unknown, context: ExecutionContext): TenantId =>
    context.switchToHttp().getRequest<{ tenant?: string }>().tenant,
);
