/**
 * Delay before the attempt after `attemptsMade` failures: exponential from `baseMs`, capped at `maxMs`,
 * with "equal jitter" (half fixed, half random) so a burst of failures does not retry in lockstep.
 */
export function retryDelayMs(attemptsMade: number, baseMs: number, maxMs: number, random = Math.random): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(exponential / 2 + random() * (exponential / 2));
}
