import type { Cluster, Redis } from 'ioredis';

/** A client's statuses between losing a connection and being ready on the next one. */
const RECONNECTING = new Set(['close', 'reconnecting', 'connecting', 'connect']);

/** Callers waiting for one deadline (a loss plus one wait), settled together. */
interface Waiters {
  ready: Promise<boolean>;
  settle: (ready: boolean) => void;
  timer: NodeJS.Timeout;
}

const windows = new WeakMap<Redis | Cluster, ReconnectWindow>();

/**
 * Knows when a client lost its connection, so that a call made while it reconnects can wait for the next
 * connection instead of failing: a reconnect after a network blip, a failover or the silent-connection
 * watchdog takes some 100 ms, and a caller refused in it would have to retry what would have worked.
 * Only within a bound from the loss: in a longer outage calls fail at once again, so they do not pile up
 * in the process while Redis is away (a client with its offline queue off, as ours are, fails them anyway).
 *
 * One per client, with one `close`, one `ready` and one `end` listener however many users it has; they
 * live as long as the client.
 */
export class ReconnectWindow {
  /** When the connection the client had ready was lost; undefined while ready, or never ready yet. */
  private lostAt?: number;
  private wasReady: boolean;
  /** By deadline. */
  private readonly waiting = new Map<number, Waiters>();

  private constructor(private readonly redis: Redis | Cluster) {
    this.wasReady = redis.status === 'ready';
    redis.on('close', () => this.lost());
    redis.on('ready', () => {
      this.wasReady = true;
      this.lostAt = undefined;
      this.settleAll(true);
    });
    redis.on('end', () => this.settleAll(false));
  }

  /** The window of `redis`; made on first use, so make it when the client is handed over, not when it fails. */
  static of(redis: Redis | Cluster): ReconnectWindow {
    let window = windows.get(redis);
    if (window === undefined) windows.set(redis, (window = new ReconnectWindow(redis)));
    return window;
  }

  /**
   * While the client reconnects after losing a connection it had ready, and `waitMs` from that loss have not
   * passed: whether it is ready again by then. Otherwise undefined (it is ready, has not connected yet, has
   * ended, or has been away longer): the caller goes on as it would without a window.
   */
  untilReconnected(waitMs: number): Promise<boolean> | undefined {
    const status = this.redis.status;
    if (status === 'ready' || waitMs <= 0 || !RECONNECTING.has(status)) return undefined;
    // The status changes before its event is emitted (on the next tick): a loss under way counts from now.
    if (this.lostAt === undefined && this.wasReady) this.lost();
    if (this.lostAt === undefined) return undefined;
    const deadline = this.lostAt + waitMs;
    if (deadline <= Date.now()) return undefined;
    let waiters = this.waiting.get(deadline);
    if (waiters === undefined) {
      let settle!: (ready: boolean) => void;
      const ready = new Promise<boolean>((resolve) => (settle = resolve));
      const timer = setTimeout(() => {
        this.waiting.delete(deadline);
        settle(this.redis.status === 'ready');
      }, deadline - Date.now());
      waiters = { ready, settle, timer };
      this.waiting.set(deadline, waiters);
    }
    return waiters.ready;
  }

  private lost(): void {
    if (this.wasReady) this.lostAt ??= Date.now();
  }

  private settleAll(ready: boolean): void {
    for (const { settle, timer } of this.waiting.values()) {
      clearTimeout(timer);
      settle(ready);
    }
    this.waiting.clear();
  }
}
