import type { Redis } from 'ioredis';

/** Probes sent per timeout: a silent connection is found at most a quarter of the timeout late. */
const PROBES_PER_TIMEOUT = 4;

/**
 * Reconnects a client whose connection looks open but answers nothing: its peer vanished without a reset
 * (a host gone, a NAT or firewall that dropped the flow), so the client never sees an error and every
 * call on it would wait for ever. A `PING` goes out every quarter of `timeoutMs`; one unanswered for
 * `timeoutMs` makes the client reconnect, and ioredis sends every unanswered call again on the new
 * connection. A timeout on the calls themselves could not answer their callers: a call may have run, or
 * may still run once the stalled bytes move. Re-sent, each call gets the answer of its one run: the buffer
 * script runs each call number once, and the client's other calls (reads, rate-limit reservations) are
 * safe to repeat. If Redis does not answer on the new connection either, the client's own retry limit
 * (`maxRetriesPerRequest`) ends the calls with "may or may not be buffered".
 *
 * It watches the whole client, whoever's calls are on it. Standalone clients only: a Cluster client routes
 * calls to nodes itself. Stops when the client ends (`quit`, `disconnect`).
 */
export class SilentConnectionWatchdog {
  private readonly timer: NodeJS.Timeout;
  /** When the probe in flight was sent; undefined when none is. */
  private probeSentAt?: number;
  /** Tells a probe answered after a reconnect (it was re-sent) from the current one. */
  private probes = 0;

  constructor(
    private readonly redis: Redis,
    private readonly timeoutMs: number,
    private readonly onReconnect: (unansweredForMs: number) => void,
  ) {
    this.timer = setInterval(() => this.check(), Math.max(10, timeoutMs / PROBES_PER_TIMEOUT));
    this.timer.unref();
    redis.once('end', () => this.close());
  }

  close(): void {
    clearInterval(this.timer);
  }

  private check(): void {
    if (this.redis.status !== 'ready') {
      this.probeSentAt = undefined;
      return;
    }
    const now = Date.now();
    if (this.probeSentAt === undefined) {
      const probe = ++this.probes;
      this.probeSentAt = now;
      const answered = () => {
        if (probe === this.probes) this.probeSentAt = undefined;
      };
      this.redis.ping().then(answered, answered);
      return;
    }
    if (now - this.probeSentAt < this.timeoutMs) return;
    this.onReconnect(now - this.probeSentAt);
    this.probeSentAt = undefined;
    this.probes++;
    this.redis.disconnect(true);
  }
}
