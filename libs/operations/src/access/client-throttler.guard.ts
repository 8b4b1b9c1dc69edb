import { Injectable } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';

/**
 * Rate limits per client: the API key the ApiKeyGuard (which runs first) accepted, else the client IP:
 * the socket's address, or the one a proxy listed in TRUST_PROXY appended to X-Forwarded-For (a client
 * writing the header itself changes nothing). An unchecked key never names a client, so sending made-up
 * keys does not escape the per-IP limit.
 */
@Injectable()
export class ClientThrottlerGuard extends ThrottlerGuard {
  protected override async getTracker(request: { apiClient?: string; ip: string }): Promise<string> {
    return request.apiClient ?? `ip:${request.ip}`;
  }
}
