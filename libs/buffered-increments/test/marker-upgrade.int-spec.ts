import { uniqueName } from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';

// A batch claimed by a version with one `_bmi` number per document, left draining when it stopped.
const context = bufferTestContext('upgrade');

describe('Upgrading from the single _bmi marker', () => {
  it('applies a batch the old version left draining exactly once, against the old marker', async () => {
    const collection = context.freshCollection();
    const namespace = uniqueName('old');
    const base = `bmi:{${namespace}}`;
    const oldBatchId = 1_700_000_000_000;
    // The old flusher wrote document 'a' (marker batchId * 4 + 3) and died before 'b' and the acknowledgement.
    await collection.insertOne({ _id: 'a' as never, n: 5, _bmi: oldBatchId * 4 + 3 });
    await context.redis
      .multi()
      .hset(`${base}:draining`, 'is1:an', '5', 'is1:bn', '7', '#since', String(Date.now()))
      .set(`${base}:draining-id`, String(oldBatchId))
      .set(`${base}:seq`, String(oldBatchId))
      .exec();
    const buffer = context.buffered(collection, 60_000, { namespace, autoFlush: false });
    expect(await buffer.readIncremented('a', 'n')).toBe(5);
    expect(await buffer.readIncremented('b', 'n')).toBe(7);
    await buffer.increment('a', 'n', 1);
    const report = await buffer.flush();
    expect(report).toMatchObject({ recoveredBatches: 1, batches: 2 });
    const a = await collection.findOne({ _id: 'a' as never });
    expect(a).toMatchObject({ n: 6, _bmi: oldBatchId * 4 + 3 });
    expect(Object.values(a?._bmiMarkers ?? {})).toHaveLength(1);
    expect(await collection.findOne({ _id: 'b' as never })).toMatchObject({ n: 7 });
  });
});
