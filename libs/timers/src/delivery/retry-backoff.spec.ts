import { retryDelayMs } from './retry-backoff';

describe('retryDelayMs', () => {
  it('doubles from the base per failed attempt, between half and all of the exponential step', () => {
    expect(retryDelayMs(1, 1_000, 60_000, () => 0)).toBe(500);
    expect(retryDelayMs(1, 1_000, 60_000, () => 1)).toBe(1_000);
    expect(retryDelayMs(3, 1_000, 60_000, () => 0)).toBe(2_000);
    expect(retryDelayMs(3, 1_000, 60_000, () => 1)).toBe(4_000);
  });

  it('never exceeds the cap however many attempts failed', () => {
    expect(retryDelayMs(40, 1_000, 60_000, () => 1)).toBe(60_000);
    expect(retryDelayMs(40, 1_000, 60_000, () => 0)).toBe(30_000);
  });

  it('spreads retries of a burst of failures (jitter)', () => {
    const delays = new Set(Array.from({ length: 50 }, () => retryDelayMs(4, 1_000, 60_000)));
    expect(delays.size).toBeGreaterThan(10);
  });
});
