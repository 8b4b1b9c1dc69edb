import { ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard } from '@nestjs/throttler';

/** Above this many remembered rate-limit keys the memo starts over (keys are per client and route). */
const REMEMBERED_KEYS = 10_000;

/**
 * Rate limits per client: the API key the ApiKeyGuard (which runs first) accepted, else the client IP:
 * the socket's address, or the one a proxy listed in TRUST_PROXY appended to X-Forwarded-For (a client
 * writing the header itself changes nothing). An unchecked key never names a client, so sending made-up
 * keys does not escape the per-IP limit.
 */
@Injectable()
export class ClientThrottlerGuard extends ThrottlerGuard {
  private readonly keys = new Map<string, string>();

  protected override async getTracker(request: { apiClient?: string; ip: string }): Promise<string> {
    return request.apiClient ?? `ip:${request.ip}`;
  }

  /**
   * The library's key (a SHA-256 of route, throttler and client), remembered: a client's requests now
   * mostly spend an in-process lease, and hashing their key again was a large part of what they cost.
   */
  protected override generateKey(context: ExecutionContext, tracker: string, throttlerName: string): string {
    const name = `${context.getClass().name}-${context.getHandler().name}-${throttlerName}-${tracker}`;
    let key = this.keys.get(name);
    if (key === undefined) {
      if (this.keys.size >= REMEMBERED_KEYS) this.keys.clear();
      key = super.generateKey(context, tracker, throttlerName);
      this.keys.set(name, key);
    }
    return key;
  }
}
