import { bucketCountFor, bucketOf, groupByBucket } from './buckets';

describe('buckets', () => {
  it('sizes buckets at about 256 entries and spreads ids over all of them', () => {
    expect(bucketCountFor(0)).toBe(1);
    expect(bucketCountFor(256)).toBe(1);
    expect(bucketCountFor(1_000_000)).toBe(3907);
    const counts = new Array(100).fill(0);
    for (let i = 0; i < 25_600; i++) counts[bucketOf(`u${i}`, 100)]++;
    expect(Math.min(...counts)).toBeGreaterThan(150);
    expect(Math.max(...counts)).toBeLessThan(370);
  });

  it('puts every entry in exactly its bucket, in entry order within a bucket', () => {
    const keys = Array.from({ length: 1_000 }, (_, i) => `track-${i}`);
    const { order, starts } = groupByBucket(keys, 7);
    expect([...order].sort((a, b) => a - b)).toEqual(keys.map((_, i) => i));
    for (let b = 0; b < 7; b++) {
      const members = [...order.subarray(starts[b], starts[b + 1])];
      expect(members.every((i) => bucketOf(keys[i], 7) === b)).toBe(true);
      expect(members).toEqual([...members].sort((x, y) => x - y));
    }
  });
});
