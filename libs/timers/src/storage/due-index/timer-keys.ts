/**
 * The Redis keys of one shard of the timers' schedule. All eight carry the shard's hash tag, so on a Redis
 * Cluster they share a slot (every script takes several of them at once), and so do the wheel's bucket
 * strings, `<wheel>:<bucket number>`, which the scripts derive from `wheel`; different shards hash to
 * different slots, so the schedule spreads over the Cluster's nodes.
 */
export interface TimerKeys {
  /** Sorted set: timer id (24 characters) -> next attempt time (ms); timers waiting, not claimed. */
  due: string;
  /** Sorted set of timers claimed for delivery -> when the claim lapses unless renewed (ms). */
  leased: string;
  /** Hash: id -> JSON { url, attempts } for timers due soon, so delivery needs no MongoDB read. */
  staged: string;
  /** Sorted set of timers finished recently -> when (ms), which a reconciler pass must not re-add. */
  settled: string;
  /** Sorted set of leased timers claimed ahead of their run time -> run time (ms), not fired yet. */
  armed: string;
  /** Hash: id -> token of the claim that holds a leased timer, until its holder takes it to send it. */
  claims: string;
  /**
   * Sorted set of the timing wheel's buckets: bucket number (its start / 1000) -> its start (ms). Each
   * bucket is a string `<wheel>:<bucket number>` of 14-byte records of timers due too far off for `due`
   * (see schedule-timers-6.lua).
   */
  wheel: string;
  /** String: how many live records the wheel's buckets hold (timers waiting there). */
  wheeled: string;
}

/**
 * The keys of shard `shard` of a schedule spread over `shards`: tagged `{<prefix>}` when there is one
 * shard, `{<prefix>:<shard>}` otherwise, so each shard has a hash slot of its own.
 */
export function timerKeys(prefix: string, shards: number, shard: number): TimerKeys {
  const base = shards === 1 ? `{${prefix}}` : `{${prefix}:${shard}}`;
  return {
    due: `${base}:due`,
    leased: `${base}:leased`,
    staged: `${base}:staged`,
    settled: `${base}:settled`,
    armed: `${base}:armed`,
    claims: `${base}:claims`,
    wheel: `${base}:wheel`,
    wheeled: `${base}:wheeled`,
  };
}
