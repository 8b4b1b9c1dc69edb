import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import pLimit from 'p-limit';
import { Agent, errors as undiciErrors, request } from 'undici';
import { TIMERS_CONFIG, TimersConfig } from '../timers.config';
import { ForbiddenTargetError, forbiddenTargetReason, publicOnlyLookup } from './target-guard';
import { webhookSignatureHeaders } from './webhook-signature';

/** What one POST to a webhook target came to. `retryable` says whether another attempt may succeed. */
export type SendOutcome =
  { delivered: true; status: number } | { delivered: false; retryable: boolean; error: string };

/** `<url>/<id>`: the id becomes the last path segment; query string kept, fragment dropped. */
export function webhookTarget(url: string, id: string): URL {
  const target = new URL(url);
  target.pathname = `${target.pathname.replace(/\/+$/, '')}/${encodeURIComponent(id)}`;
  target.hash = '';
  return target;
}

/**
 * POSTs an empty, signed body to a timer's target. Redirects are never followed (a 3xx is a failed
 * attempt), the whole request has a deadline, and in-flight requests are capped per process
 * (TIMERS_DELIVERY_CONCURRENCY) and per target host (TIMERS_MAX_CONCURRENCY_PER_HOST).
 */
@Injectable()
export class WebhookSender implements OnModuleDestroy {
  private readonly agent: Agent;
  private readonly perHost = new Map<string, ReturnType<typeof pLimit>>();
  private readonly inFlight: ReturnType<typeof pLimit>;

  constructor(@Inject(TIMERS_CONFIG) private readonly config: TimersConfig) {
    this.inFlight = pLimit(config.TIMERS_DELIVERY_CONCURRENCY);
    this.agent = new Agent({
      connect: config.TIMERS_ALLOW_PRIVATE_TARGETS ? {} : { lookup: publicOnlyLookup as never },
      headersTimeout: config.TIMERS_DELIVERY_TIMEOUT_MS,
      bodyTimeout: config.TIMERS_DELIVERY_TIMEOUT_MS,
    });
  }

  async send(url: string, id: string): Promise<SendOutcome> {
    let target: URL;
    try {
      target = webhookTarget(url, id);
    } catch {
      return { delivered: false, retryable: false, error: `invalid url ${url}` };
    }
    if (!this.config.TIMERS_ALLOW_PRIVATE_TARGETS) {
      const refusal = forbiddenTargetReason(target);
      if (refusal) return { delivered: false, retryable: false, error: refusal };
    }
    // A host slot first, then a process slot: a request waiting for a busy host holds no process slot.
    return this.withHostLimit(target.host, () => this.inFlight(() => this.post(target, id)));
  }

  async onModuleDestroy(): Promise<void> {
    await this.agent.close();
  }

  private async post(target: URL, id: string): Promise<SendOutcome> {
    const body = '';
    const headers = {
      ...webhookSignatureHeaders(
        this.config.TIMERS_SIGNING_SECRET,
        id,
        Math.floor(Date.now() / 1000),
        body,
      ),
      'content-length': '0',
      'user-agent': 'bufferq-timers/1',
    };
    try {
      const response = await request(target, {
        method: 'POST',
        body,
        headers,
        dispatcher: this.agent,
        signal: AbortSignal.timeout(this.config.TIMERS_DELIVERY_TIMEOUT_MS),
      });
      await response.body.dump();
      const status = response.statusCode;
      if (status >= 200 && status < 300) return { delivered: true, status };
      const retryable = status === 429 || status >= 500;
      return {
        delivered: false,
        retryable,
        error: `HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`,
      };
    } catch (error) {
      if (
        error instanceof ForbiddenTargetError ||
        (error as { cause?: unknown }).cause instanceof ForbiddenTargetError
      ) {
        const forbidden =
          error instanceof ForbiddenTargetError
            ? error
            : ((error as { cause: Error }).cause as Error);
        return { delivered: false, retryable: false, error: forbidden.message };
      }
      if (isTimeout(error))
        return {
          delivered: false,
          retryable: true,
          error: `timed out after ${this.config.TIMERS_DELIVERY_TIMEOUT_MS} ms`,
        };
      const code = (error as { code?: string }).code;
      return {
        delivered: false,
        retryable: true,
        error: `network error: ${code ?? ''} ${(error as Error).message}`.trim(),
      };
    }
  }

  private async withHostLimit<T>(host: string, task: () => Promise<T>): Promise<T> {
    let limit = this.perHost.get(host);
    if (!limit) {
      limit = pLimit(this.config.TIMERS_MAX_CONCURRENCY_PER_HOST);
      this.perHost.set(host, limit);
    }
    try {
      return await limit(task);
    } finally {
      // Forget idle hosts so the map stays as small as the set of hosts with deliveries in flight.
      if (limit.activeCount === 0 && limit.pendingCount === 0) this.perHost.delete(host);
    }
  }
}

function isTimeout(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return (
    name === 'TimeoutError' ||
    name === 'AbortError' ||
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  );
}
