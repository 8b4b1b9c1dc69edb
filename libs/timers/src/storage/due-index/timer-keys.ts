/**
 * The Redis keys of the timers' schedule, under `<TIMERS_REDIS_PREFIX>:`. They carry no hash tag: the
 * scripts take several of them at once, so a prefix's keys must live on one Redis node.
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
}

export function timerKeys(prefix: string): TimerKeys {
  return {
    due: `${prefix}:due`,
    leased: `${prefix}:leased`,
    staged: `${prefix}:staged`,
    settled: `${prefix}:settled`,
    armed: `${prefix}:armed`,
    claims: `${prefix}:claims`,
  };
}
