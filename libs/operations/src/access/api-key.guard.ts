import { CanActivate, ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import { OPERATIONS_CONFIG, OperationsConfig } from '../operations.config';
import { PUBLIC_ENDPOINT } from './public-endpoint.decorator';

const digest = (key: string) => createHash('sha256').update(key).digest();

/**
 * With API_KEYS set, every route not marked @PublicEndpoint() needs a configured `x-api-key` (401 otherwise).
 * A request it lets through carries `request.tenant`, the key's tenant id (the first 32 hex digits of its
 * SHA-256: data a key creates belongs to it, e.g. timers), and `request.apiClient`, its rate-limit client
 * name; both come from the digest, the only form of a key this process keeps. Without API_KEYS neither is
 * set: every caller is the default tenant.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keyDigests: Buffer[];

  constructor(
    @Inject(OPERATIONS_CONFIG) config: OperationsConfig,
    private readonly reflector: Reflector,
  ) {
    this.keyDigests = config.API_KEYS.map(digest);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.keyDigests.length === 0) return true;
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ENDPOINT, [context.getHandler(), context.getClass()]))
      return true;
    const request = context
      .switchToHttp()
      .getRequest<{ headers: Record<string, unknown>; apiClient?: string; tenant?: string }>();
    const given = request.headers['x-api-key'];
    // Compare digests in constant time, so response timing tells nothing about a key's characters.
    const matched =
      typeof given === 'string' ? this.keyDigests.find((key) => timingSafeEqual(key, digest(given))) : undefined;
    if (matched) {
      // 128 bits of the digest: a stable id per key that reveals nothing about the key.
      request.tenant = matched.toString('hex').slice(0, 32);
      request.apiClient = `key:${request.tenant}`;
      return true;
    }
    throw new UnauthorizedException('a valid x-api-key header is required');
  }
}
