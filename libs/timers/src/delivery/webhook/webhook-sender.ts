import { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Agent, Dispatcher, errors as undiciErrors } from 'undici';
import { TIMERS_CONFIG, TimersConfig } from '../../timers.config';
import { DeliverySlots, FifoQueue } from './delivery-slots';
import { ForbiddenTargetError, forbiddenTargetReason, publicOnlyLookup } from './target-guard';
import { WarmSockets } from './warm-sockets';
import { signingKey, webhookSignature } from './webhook-signature';

/** What one POST to a webhook target came to. `retryable` says whether another attempt may succeed. */
export type SendOutcome = { delivered: true; status: number } | { delivered: false; retryable: boolean; error: string };

/** A timer's webhook url, parsed once: where its POSTs go and whether they may go there at all. */
export interface WebhookTarget {
  origin: string;
  /** `host[:port]`, the key of the per-host cap. */
  host: string;
  /** The url's path without trailing slashes; the timer id is appended as one more segment. */
  basePath: string;
  /** The url's query string (`?...`) or ''. */
  search: string;
}

/** Parses a webhook url; the fragment is dropped (it is never sent). Throws on an invalid url. */
export function parseWebhookTarget(url: string): WebhookTarget {
  const parsed = new URL(url);
  return {
    origin: parsed.origin,
    host: parsed.host,
    basePath: parsed.pathname.replace(/\/+$/, ''),
    search: parsed.search,
  };
}

/** The request path of a timer's POST: `<url path>/<id>`, query string kept. */
export function webhookPath(target: WebhookTarget, id: string): string {
  return `${target.basePath}/${encodeURIComponent(id)}${target.search}`;
}

/** Response bytes read (and dropped) before the connection is closed instead of drained for reuse. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Parsed urls kept; timers of one burst mostly share a few urls. */
const TARGET_CACHE_SIZE = 10_000;
const USER_AGENT = 'bufferq-timers/1';
/** How often attempts past their deadline are looked for (at most a tenth of the timeout). */
const DEADLINE_SWEEP_MS = 50;
/** How long a connection opened ahead waits for its first request beyond the lookahead before it is closed. */
const WARM_SOCKET_GRACE_MS = 5_000;
/** A signature made ahead is for the second its timer falls due in; one not used this long after is dropped. */
const SIGNED_AHEAD_GRACE_MS = 5_000;

/**
 * POSTs an empty, signed body to a timer's target. Redirects are never followed (a 3xx is a failed
 * attempt), the whole request has a deadline, and in-flight requests are capped per process
 * (TIMERS_DELIVERY_CONCURRENCY) and per target host (TIMERS_MAX_CONCURRENCY_PER_HOST).
 *
 * Built for bursts of tens of thousands of POSTs a second from one process: connections are kept alive
 * and reused (undici Agent, one pool per origin; DNS and the SSRF check run per new connection, not per
 * request) and opened ahead for armed timers (connectAhead), a url is parsed once, and each request is one
 * undici dispatch with a small handler (no response stream, no AbortSignal, no promise chain): at this
 * rate those per-request objects, not the network, are what the worker spends its CPU on.
 */
@Injectable()
export class WebhookSender implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WebhookSender.name);
  private readonly agent: Agent;
  private readonly warmSockets: WarmSockets;
  private warmingUp?: Promise<number>;
  private readonly slots: DeliverySlots;
  private readonly targets = new Map<string, WebhookTarget | { refused: string }>();
  private readonly key: KeyObject;
  /**
   * Attempts in the order they got their slot, which is their deadline order (one timeout for all): one
   * sweep finds those past it, instead of a timer set and cleared per POST.
   */
  private readonly deadlines = new FifoQueue<WebhookAttempt>();
  private readonly sweep: NodeJS.Timeout;
  /**
   * Signatures made ahead for armed timers (signAhead), by timer id, in two generations (the newer first):
   * the older one is dropped every lookahead + SIGNED_AHEAD_GRACE_MS, which forgets those of timers never
   * sent (cancelled). The maps are swapped in place: assigning a field after the JIT compiled `post`
   * would drop that code (V8 tracks fields never reassigned), and a burst would start interpreted.
   */
  private readonly signed: [Map<string, SignedAhead>, Map<string, SignedAhead>] = [new Map(), new Map()];
  private signedAheadRotateAt: number;

  constructor(@Inject(TIMERS_CONFIG) private readonly config: TimersConfig) {
    this.slots = new DeliverySlots(config.TIMERS_DELIVERY_CONCURRENCY, config.TIMERS_MAX_CONCURRENCY_PER_HOST);
    this.key = signingKey(config.TIMERS_SIGNING_SECRET);
    const timeout = config.TIMERS_DELIVERY_TIMEOUT_MS;
    this.warmSockets = new WarmSockets(
      { timeout, ...(config.TIMERS_ALLOW_PRIVATE_TARGETS ? {} : { lookup: publicOnlyLookup as never }) },
      config.TIMERS_DELIVERY_CONCURRENCY,
      config.TIMERS_SCHEDULER_LOOKAHEAD_MS + WARM_SOCKET_GRACE_MS,
    );
    this.agent = new Agent({
      connect: this.warmSockets.connector,
      // No more connections per origin than requests allowed in flight to its host: a burst reuses
      // them instead of opening a new one whenever a request ends a moment before the next begins.
      connections: config.TIMERS_MAX_CONCURRENCY_PER_HOST,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      // undici keeps an idle connection for the server's `Keep-Alive: timeout=N` minus this margin (2 s
      // by default, which makes a server announcing 1-2 s get a new connection per request). A request
      // racing the server's close fails as a network error and is retried like any other.
      keepAliveTimeoutThreshold: 1_000,
    });
    this.signedAheadRotateAt = Date.now() + this.signedAheadLifetimeMs;
    this.sweep = setInterval(() => this.expireAttempts(), Math.max(1, Math.min(DEADLINE_SWEEP_MS, timeout / 10)));
    this.sweep.unref();
  }

  send(url: string, id: string): Promise<SendOutcome> {
    return new Promise((resolve) => this.sendThen(url, id, resolve));
  }

  /**
   * As `send`, with the outcome passed to `onOutcome` (called once, never synchronously) instead of a
   * promise: in a burst the worker sends tens of thousands of POSTs a second, and a promise and its
   * reaction per POST are garbage the worker collects while the burst is still being sent.
   */
  sendThen(url: string, id: string, onOutcome: (outcome: SendOutcome) => void): void {
    const target = this.targetOf(url);
    if ('refused' in target) {
      const outcome: SendOutcome = { delivered: false, retryable: false, error: target.refused };
      queueMicrotask(() => onOutcome(outcome));
      return;
    }
    this.slots.run(target.host, (done) => this.post(target, id, onOutcome, done));
  }

  /**
   * Signs the POSTs of armed timers ahead, for the second each falls due in: one HMAC per timer off the
   * burst, which then only looks the signature up. A POST sent in another second (late) is signed then.
   */
  signAhead(timers: Array<{ id: string; runAt: number }>): void {
    for (const { id, runAt } of timers) {
      const second = Math.floor(runAt / 1000);
      this.signed[0].set(id, { second, signature: webhookSignature(this.key, id, second, '') });
    }
  }

  /**
   * Opens connections ahead to the origins these urls POST to, as many as will be in flight to each at
   * once (what the origin's pool has connected counts): called with armed timers, up to the lookahead
   * before they fall due, so their burst does not start with a handshake per request (see WarmSockets).
   */
  connectAhead(urls: string[]): void {
    const counts = new Map<string, number>();
    for (const url of urls) {
      const target = this.targetOf(url);
      if (!('refused' in target)) counts.set(target.origin, (counts.get(target.origin) ?? 0) + 1);
    }
    if (!counts.size) return;
    const pools = this.agent.stats;
    for (const [origin, count] of counts) {
      const open = Number(pools[origin]?.connected ?? 0) + this.warmSockets.waiting(origin);
      const wanted = Math.min(count, this.connectionsPerOrigin) - open;
      if (wanted > 0) this.warmSockets.open(origin, wanted);
    }
  }

  /** Whether POSTs are in flight (an attempt waiting for a slot implies some are). */
  get busy(): boolean {
    return this.slots.inFlight > 0;
  }

  /** In the background: deliveries arriving meanwhile are sent as usual, sharing the slots. */
  onApplicationBootstrap(): void {
    this.warmingUp = this.warmUp(this.config.TIMERS_DELIVERY_WARMUP_POSTS).catch((error: Error) => {
      this.logger.warn(`warming up the sending path failed: ${error.message}`);
      return 0;
    });
  }

  /**
   * Last: at module destroy the scheduler still sends the timers it holds for their run time (at most the
   * lookahead away) and the delivery worker finishes its jobs; both need the sender until then.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.warmingUp;
    this.warmSockets.close();
    await this.agent.close();
    clearInterval(this.sweep);
  }

  /**
   * Sends `posts` POSTs through the whole sending path (slots, signature, undici, sockets) to throwaway
   * servers in this process, never to a timer's target; resolves with how many they answered. Why: a
   * process that has never sent runs that code interpreted, at a few thousand POSTs a second, until the
   * JIT has compiled it, so a burst falling due soon after start would be sent at a fraction of the warm
   * rate. The second half goes as a burst of armed timers does: to an origin new to undici, over
   * connections opened ahead (WarmSockets). Without it, what only a burst did (a new origin's pool, sockets
   * handed over by WarmSockets, their idle timers cleared) made V8 drop the optimized code of undici's
   * dispatch and of `post` when the first burst came, and its first thousands of POSTs cost 2-4x the CPU.
   */
  async warmUp(posts: number): Promise<number> {
    if (posts <= 0) return 0;
    const plain = Math.ceil(posts / 2);
    let answered = await this.warmUpRound(plain, false);
    if (posts > plain) answered += await this.warmUpRound(posts - plain, true);
    return answered;
  }

  private async warmUpRound(posts: number, openedAhead: boolean): Promise<number> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    try {
      const target = parseWebhookTarget(`http://127.0.0.1:${(server.address() as AddressInfo).port}/warm-up`);
      if (openedAhead) {
        this.warmSockets.open(target.origin, Math.min(posts, this.connectionsPerOrigin));
        const until = Date.now() + 2_000;
        while (this.warmSockets.opening(target.origin) > 0 && Date.now() < until)
          await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // Half signed ahead, as armed timers' POSTs are (the other half as retries and due timers are).
      const now = Date.now();
      this.signAhead(Array.from({ length: posts >> 1 }, (_, i) => ({ id: `warm-up-${i}`, runAt: now })));
      const outcomes = await Promise.all(
        Array.from(
          { length: posts },
          (_, i) =>
            new Promise<SendOutcome>((resolve) =>
              this.slots.run(target.host, (done) => this.post(target, `warm-up-${i}`, resolve, done)),
            ),
        ),
      );
      return outcomes.filter((outcome) => outcome.delivered).length;
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Times out the attempts past their deadline; drops settled ones from the front of the queue. */
  private expireAttempts(): void {
    const now = Date.now();
    if (now >= this.signedAheadRotateAt) {
      const older = this.signed[1];
      older.clear();
      this.signed[1] = this.signed[0];
      this.signed[0] = older;
      this.signedAheadRotateAt = now + this.signedAheadLifetimeMs;
    }
    for (let head = this.deadlines.peek(); head; head = this.deadlines.peek()) {
      if (!head.settled && head.deadlineAt > now) return;
      this.deadlines.shift();
      if (!head.settled) head.expire();
    }
  }

  /** Requests in flight to one origin at most, so the connections worth opening ahead to it. */
  private get connectionsPerOrigin(): number {
    return Math.min(this.config.TIMERS_MAX_CONCURRENCY_PER_HOST, this.config.TIMERS_DELIVERY_CONCURRENCY);
  }

  private get signedAheadLifetimeMs(): number {
    return this.config.TIMERS_SCHEDULER_LOOKAHEAD_MS + SIGNED_AHEAD_GRACE_MS;
  }

  /** The signature of this POST, made ahead if it was made for this second. */
  private signature(id: string, timestamp: number): string {
    let ahead = this.signed[0].get(id);
    if (ahead) this.signed[0].delete(id);
    else if ((ahead = this.signed[1].get(id))) this.signed[1].delete(id);
    return ahead?.second === timestamp ? ahead.signature : webhookSignature(this.key, id, timestamp, '');
  }

  private targetOf(url: string): WebhookTarget | { refused: string } {
    let target = this.targets.get(url);
    if (target) return target;
    try {
      const parsed = parseWebhookTarget(url);
      const refusal = this.config.TIMERS_ALLOW_PRIVATE_TARGETS ? undefined : forbiddenTargetReason(new URL(url));
      target = refusal ? { refused: refusal } : parsed;
    } catch {
      target = { refused: `invalid url ${url}` };
    }
    if (this.targets.size >= TARGET_CACHE_SIZE) this.targets.clear();
    this.targets.set(url, target);
    return target;
  }

  private post(target: WebhookTarget, id: string, resolve: (outcome: SendOutcome) => void, done: () => void): void {
    const timestamp = Math.floor(Date.now() / 1000);
    const attempt = new WebhookAttempt(this.config.TIMERS_DELIVERY_TIMEOUT_MS, (outcome) => {
      done();
      resolve(outcome);
    });
    this.deadlines.push(attempt);
    this.agent.dispatch(
      {
        origin: target.origin,
        path: webhookPath(target, id),
        method: 'POST',
        // With no body undici sends `content-length: 0` for a POST.
        body: null,
        headers: [
          'webhook-id',
          id,
          'webhook-timestamp',
          String(timestamp),
          'webhook-signature',
          this.signature(id, timestamp),
          'user-agent',
          USER_AGENT,
        ],
      },
      attempt,
    );
  }
}

interface SignedAhead {
  /** The `webhook-timestamp` it was made for (unix seconds). */
  second: number;
  signature: string;
}

/**
 * One POST, as an undici dispatch handler (the callback interface undici's own `request` is built on).
 * It settles exactly once: with the response status once the response ended (its body read and dropped,
 * so the connection is reused), with a network error, or with a timeout when TIMERS_DELIVERY_TIMEOUT_MS
 * passed since the attempt got its slot, whatever phase (connecting, waiting, reading) it was in (found
 * by WebhookSender's deadline sweep, so up to a sweep period later).
 */
class WebhookAttempt implements Dispatcher.DispatchHandler {
  readonly deadlineAt: number;
  private abort?: (error?: Error) => void;
  private status = 0;
  private responseBytes = 0;
  /** Its outcome is given (WebhookSender's deadline sweep drops settled attempts). */
  settled = false;
  private timedOut = false;

  constructor(
    private readonly timeoutMs: number,
    private settle: (outcome: SendOutcome) => void,
  ) {
    this.deadlineAt = Date.now() + timeoutMs;
  }

  onConnect(abort: (error?: Error) => void): void {
    // Settled already (timed out while waiting for a connection): do not send it late.
    if (this.settled) abort(new Error('webhook attempt timed out before it was sent'));
    else this.abort = abort;
  }

  onHeaders(statusCode: number): boolean {
    this.status = statusCode; // 1xx answers come first; the last status is the answer
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.responseBytes += chunk.length;
    if (this.responseBytes > MAX_RESPONSE_BYTES) {
      const abort = this.abort;
      this.finish(statusOutcome(this.status));
      abort?.(new Error('response body too large; connection dropped'));
      return false;
    }
    return true;
  }

  onComplete(): void {
    this.finish(statusOutcome(this.status));
  }

  onError(error: Error): void {
    this.finish(
      this.timedOut || isTimeout(error)
        ? { delivered: false, retryable: true, error: `timed out after ${this.timeoutMs} ms` }
        : errorOutcome(error),
    );
  }

  /** Its deadline passed. */
  expire(): void {
    this.timedOut = true;
    if (this.abort) this.abort(new Error(`timed out after ${this.timeoutMs} ms`));
    // Still waiting for a connection: settle now; onConnect drops the request if it comes later.
    else this.onError(new Error('timed out'));
  }

  private finish(outcome: SendOutcome): void {
    if (this.settled) return;
    this.settled = true;
    // Nor undici's request, which its abort function holds.
    this.abort = undefined;
    const settle = this.settle;
    // It may wait in the deadline queue behind a slow attempt: keep nothing of the delivery alive there.
    this.settle = () => undefined;
    settle(outcome);
  }
}

/** One outcome object per 2xx status, shared by all POSTs answered with it (outcomes wait, in a burst, to be recorded). */
const DELIVERED = new Map<number, SendOutcome>();

function statusOutcome(status: number): SendOutcome {
  if (status >= 200 && status < 300) {
    let outcome = DELIVERED.get(status);
    if (!outcome) DELIVERED.set(status, (outcome = Object.freeze({ delivered: true, status })));
    return outcome;
  }
  return {
    delivered: false,
    retryable: status === 429 || status >= 500,
    error: `HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`,
  };
}

function errorOutcome(error: Error): SendOutcome {
  const cause = (error as { cause?: unknown }).cause;
  if (error instanceof ForbiddenTargetError || cause instanceof ForbiddenTargetError) {
    const forbidden = error instanceof ForbiddenTargetError ? error : (cause as Error);
    return { delivered: false, retryable: false, error: forbidden.message };
  }
  const code = (error as { code?: string }).code;
  return {
    delivered: false,
    retryable: true,
    error: `network error: ${code ?? ''} ${error.message}`.trim(),
  };
}

function isTimeout(error: Error): boolean {
  return (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError
  );
}
