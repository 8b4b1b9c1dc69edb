import { MicroBatcher } from './micro-batcher';

describe('MicroBatcher', () => {
  it('runs the calls of one event-loop turn as one batch when told not to wait, and gives each caller its result', async () => {
    const batches: number[][] = [];
    const batcher = new MicroBatcher(
      async (inputs: number[]) => {
        batches.push(inputs);
        return inputs.map((input) => input * 10);
      },
      1_000,
      0,
    );
    const results = await Promise.all([1, 2, 3].map((input) => batcher.submit(input)));
    expect(results).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('gathers the calls arriving while a batch runs into the next one, at most maxBatch per batch', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const firstBatchHeld = new Promise<void>((resolve) => (release = resolve));
    const batcher = new MicroBatcher(
      async (inputs: number[]) => {
        batches.push(inputs);
        if (batches.length === 1) await firstBatchHeld;
        return inputs;
      },
      2,
      0,
    );
    const first = batcher.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = [2, 3, 4].map((input) => batcher.submit(input));
    release();
    expect(await Promise.all([first, ...later])).toEqual([1, 2, 3, 4]);
    expect(batches).toEqual([[1], [2, 3], [4]]);
  });

  it('rejects every caller of a batch that fails, and runs the next batch', async () => {
    let calls = 0;
    const batcher = new MicroBatcher(
      async (inputs: number[]) => {
        calls += 1;
        if (calls === 1) throw new Error('store down');
        return inputs;
      },
      1_000,
      0,
    );
    const failed = [1, 2].map((input) => batcher.submit(input));
    await expect(Promise.all(failed)).rejects.toThrow('store down');
    await expect(failed[1]).rejects.toThrow('store down');
    expect(await batcher.submit(3)).toBe(3);
  });
});
