import { formatMinorUnits, parseFeeCents, splitByLargestRemainder, unitsToCents } from './money';

describe('money', () => {
  it('reads fees with a decimal comma as integer cents and rejects anything else', () => {
    expect(parseFeeCents('7,99')).toBe(799);
    expect(parseFeeCents(' 12 ')).toBe(1200);
    expect(parseFeeCents('7,9')).toBe(790);
    for (const bad of ['7.99', '-1,00', '7,999', '', 'abc', '1,']) expect(parseFeeCents(bad)).toBeNull();
  });

  it('splits the issue example exactly: 10,000 over 10,000 / 6,000 / 4,000 of 20,000 seconds', () => {
    const parts = splitByLargestRemainder(1_000_000n, [
      { key: 'label 1', weight: 10_000 },
      { key: 'label 2', weight: 6_000 },
      { key: 'label 3', weight: 4_000 },
    ]);
    expect([...parts]).toEqual([
      ['label 1', 500_000n],
      ['label 2', 300_000n],
      ['label 3', 200_000n],
    ]);
  });

  it('gives the leftover cents to the largest remainders, ties to the first key, so parts add up to the total', () => {
    const parts = splitByLargestRemainder(100n, [
      { key: 'c', weight: 1 },
      { key: 'b', weight: 1 },
      { key: 'a', weight: 1 },
    ]);
    expect(Object.fromEntries(parts)).toEqual({ a: 34n, b: 33n, c: 33n });
    const uneven = splitByLargestRemainder(
      1_000_003n,
      [7, 11, 13, 17, 19, 23].map((weight, i) => ({ key: `l${i}`, weight })),
    );
    expect([...uneven.values()].reduce((a, b) => a + b, 0n)).toBe(1_000_003n);
  });

  it('pays nothing when no second was streamed on a known track', () => {
    expect(Object.fromEntries(splitByLargestRemainder(500n, [{ key: 'a', weight: 0 }]))).toEqual({ a: 0n });
  });

  it('rounds revenue units half up to cents and formats exact decimals', () => {
    expect(unitsToCents(235_840n)).toBe(2358n);
    expect(unitsToCents(235_850n)).toBe(2359n);
    expect(formatMinorUnits(235_840n, 4)).toBe('23.5840');
    expect(formatMinorUnits(5n, 2)).toBe('0.05');
  });
});
