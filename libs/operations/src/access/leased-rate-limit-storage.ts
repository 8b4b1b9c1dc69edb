import { join } from 'node:path';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { RedisLike, RedisScript } from '@bufferq/redis-scripts';

type ThrottlerRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

const reserveHits = new RedisScript(join(__dirname, 'scripts', 'reserve-rate-limit-hits-2.lua'));

/**
 * The largest lease is this fraction of the limit (at least one request): what a process may hold
 * unspent, and so the most of a window one process can keep from the others.
 */
export const LEASE_SHARE_OF_LIMIT = 1 / 100;

/** Above this many clients tracked, clients whose window and block have ended are dropped. */
const SWEEP_AT_CLIENTS = 10_000;

/** One client's reservation in this process (per throttler), and how large the next one should be. */
interface ClientLease {
  /** Requests reserved in Redis and not admitted yet. */
  left: number;
  /** The window's count in Redis once the lease was reserved: the last reserved request's number. */
  lastHit: number;
  /** Local clock; the lease is void from then on (the window it was counted in has ended). */
  windowEndsAt: number;
  blockedUntil: number;
  /** The next reservation's size: doubles while leases run out within their window, halves when one expires unspent. */
  size: number;
  /** Requests waiting for `reserving`, so one reservation can cover all of them. */
  waiting: number;
  reserving?: Promise<Reservation>;
}

type Reservation = [granted: number, hits: number, windowLeftMs: number, blockLeftMs: number];

/**
 * Rate-limit counts in Redis, spent in-process: a client's requests are reserved from its Redis window
 * in leases (atomically, by one script), and admitted from the lease here without a Redis round trip
 * until it runs out. Leases start at one request and double while the client keeps using them up, to at
 * most `LEASE_SHARE_OF_LIMIT` of the limit; a slow client therefore costs a round trip per request, as
 * before, and a busy one a round trip per lease.
 *
 * The limit stays global and is never exceeded: every admitted request was reserved in Redis, in the
 * window it is admitted in (a lease ends at the time its reservation was sent plus the window's time
 * left, never after the window in Redis). The price is the other way round: requests a process has
 * reserved and not used when its client's window fills are refused to the client's other processes,
 * at most `ceil(limit * LEASE_SHARE_OF_LIMIT)` per process; a lease left when the window ends is dropped.
 *
 * Keys and answers are those of `ThrottlerStorageRedisService`: `{key:throttler}:hits` and
 * `{key:throttler}:blocked`, hash-tagged per client and throttler so a Cluster keeps both on one node;
 * a full window blocks the client for `blockDuration`. Errors reach the caller (the fail-open wrapper).
 */
export class LeasedRateLimitStorage implements ThrottlerStorage {
  private readonly leases = new Map<string, ClientLease>();
  private sweepAt = SWEEP_AT_CLIENTS;

  constructor(private readonly redis: RedisLike) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerRecord> {
    const id = `{${key}:${throttlerName}}`;
    const lease = this.leases.get(id) ?? this.track(id);
    for (;;) {
      const now = Date.now();
      if (lease.blockedUntil > now) return blocked(lease.lastHit, lease.blockedUntil - now, lease.windowEndsAt - now);
      if (lease.left > 0 && lease.windowEndsAt > now) {
        lease.left--;
        return {
          totalHits: lease.lastHit - lease.left,
          timeToExpire: Math.ceil((lease.windowEndsAt - now) / 1000),
          isBlocked: false,
          timeToBlockExpire: 0,
        };
      }
      lease.waiting++;
      let reservation: Reservation;
      try {
        reservation = await (lease.reserving ??= this.reserve(id, lease, ttl, limit, blockDuration));
      } finally {
        lease.waiting--;
      }
      const [granted, hits, windowLeft, blockLeft] = reservation;
      // Refused: answer from the reply, even should the block already have ended by the local clock.
      if (granted === 0) return blocked(hits, blockLeft, windowLeft);
    }
  }

  private async reserve(
    id: string,
    lease: ClientLease,
    ttl: number,
    limit: number,
    blockDuration: number,
  ): Promise<Reservation> {
    const largest = Math.max(1, Math.ceil(limit * LEASE_SHARE_OF_LIMIT));
    if (lease.windowEndsAt > 0) lease.size = lease.left === 0 ? lease.size * 2 : lease.size / 2;
    lease.size = Math.min(largest, Math.max(1, Math.floor(lease.size)));
    const wanted = Math.min(largest, Math.max(lease.size, lease.waiting));
    const sentAt = Date.now();
    try {
      const reply = await reserveHits.run<Reservation>(
        this.redis,
        [`${id}:hits`, `${id}:blocked`],
        [wanted, limit, ttl, blockDuration],
      );
      const [granted, hits, windowLeft, blockLeft] = reply;
      // From the time sent: the server ran the script later, so its window ends no earlier than this.
      lease.left = granted;
      lease.lastHit = hits;
      lease.windowEndsAt = sentAt + windowLeft;
      lease.blockedUntil = granted === 0 ? sentAt + blockLeft : 0;
      return reply;
    } finally {
      lease.reserving = undefined;
    }
  }

  private track(id: string): ClientLease {
    if (this.leases.size >= this.sweepAt) {
      const now = Date.now();
      for (const [tracked, lease] of this.leases)
        if (lease.windowEndsAt <= now && lease.blockedUntil <= now && !lease.reserving) this.leases.delete(tracked);
      this.sweepAt = Math.max(SWEEP_AT_CLIENTS, this.leases.size * 2);
    }
    const lease: ClientLease = { left: 0, lastHit: 0, windowEndsAt: 0, blockedUntil: 0, size: 1, waiting: 0 };
    this.leases.set(id, lease);
    return lease;
  }
}

function blocked(hits: number, blockLeftMs: number, windowLeftMs: number): ThrottlerRecord {
  return {
    totalHits: hits,
    timeToExpire: Math.max(0, Math.ceil(windowLeftMs / 1000)),
    isBlocked: true,
    timeToBlockExpire: Math.max(1, Math.ceil(blockLeftMs / 1000)),
  };
}
