import { BufferFullError, BufferUnavailableError } from '@bufferq/buffered-increments';
import { uniqueName } from '@bufferq/testing';
import { backlogTotal, fillBacklog, runBacklogFlusher, wrongBacklogFields } from './fixtures/backlog-flusher';
import { bufferTestContext } from './fixtures/buffer-test-context';

const context = bufferTestContext('bmi_backlog');
const { freshCollection, buffered } = context;

describe('A backlog larger than one batch', () => {
  // 100,000 fields, 5 batches at the default maxBatchFields (20,000). The flusher runs with a 72 MB
  // V8 heap, as a flusher with a memory limit does: one batch of all 100,000 fields needs more than
  // 80 MB of heap and dies there (`npm run bench:backlog` shows both, for 2,000,000 fields). The shape
  // suits FerretDB, whose updates scan the whole collection: 10 documents of 10,000 fields each.
  const shape = { fields: 100_000, documents: 10 };
  const heapMb = 72;

  it('drains in batches of at most maxBatchFields within a heap one batch would exceed, every value landing exactly once', async () => {
    const collection = freshCollection();
    const namespace = uniqueName('backlog');
    await fillBacklog(context.redis, namespace, shape);
    const { report, incSent, peakRssBytes } = await runBacklogFlusher(
      context,
      collection,
      namespace,
      { lockLeaseMs: 120_000 }, // one FerretDB bulkWrite of large documents takes seconds
      { heapMb },
    );

    expect(report).toMatchObject({ batches: 5, recoveredBatches: 0, fields: shape.fields, deadLetters: 0 });
    expect(incSent).toEqual({ paths: shape.fields, sum: backlogTotal(shape) });
    expect(await wrongBacklogFields(collection, shape)).toEqual([]);
    expect(peakRssBytes).toBeLessThan(300 * 1024 * 1024);
    const flusher = buffered(collection, 60_000, { namespace, autoFlush: false });
    expect(await flusher.stats()).toEqual({ bufferedFields: 0, oldestPendingAgeMs: 0 });
  }, 120_000);
});

describe('bufferLimitFields', () => {
  const limit = 10;

  /** Buffers new fields one by one until the buffer refuses one; returns how many it took. */
  async function fillUntilFull(buffer: ReturnType<typeof buffered>): Promise<number> {
    for (let field = 0; field < 2 * limit; field++) {
      try {
        await buffer.increment('doc', `f${field}`, 1);
      } catch (error) {
        expect(error).toBeInstanceOf(BufferFullError);
        return field;
      }
    }
    throw new Error(`the buffer took ${2 * limit} fields under a limit of ${limit}`);
  }

  it('refuses an update that would add a field past the limit with BufferFullError, a BufferUnavailableError', async () => {
    const buffer = buffered(freshCollection(), 60_000, { autoFlush: false, bufferLimitFields: limit });
    const accepted = await fillUntilFull(buffer);
    expect(accepted).toBe(limit);
    const refusal = buffer.increment('other-doc', 'n', 1);
    await expect(refusal).rejects.toBeInstanceOf(BufferFullError);
    await expect(refusal).rejects.toBeInstanceOf(BufferUnavailableError);
    await expect(refusal).rejects.toThrow(/holds its limit of 10 fields.*retry later/);
    await expect(buffer.set('doc', 'f-new', 'x')).rejects.toBeInstanceOf(BufferFullError);
    expect((await buffer.stats()).bufferedFields).toBe(accepted);
  });

  it('still takes updates of fields already buffered, and new fields again once a flush made room', async () => {
    const collection = freshCollection();
    const buffer = buffered(collection, 60_000, { autoFlush: false, bufferLimitFields: limit });
    const accepted = await fillUntilFull(buffer);
    await buffer.increment('doc', 'f0', 41);
    await buffer.increment('doc', 'f1', -1);
    expect(await buffer.readIncremented('doc', 'f0')).toBe(42);

    await buffer.flush();
    await buffer.increment('doc', 'fresh', 7);
    await buffer.increment('another-doc', 'n', 1);
    await buffer.flush();
    const document = await collection.findOne({ _id: 'doc' as never });
    expect(document).toMatchObject({ f0: 42, f1: 0, fresh: 7 });
    expect(Object.keys(document ?? {}).filter((key) => /^f\d+$/.test(key))).toHaveLength(accepted);
    expect(await collection.findOne({ _id: 'another-doc' as never })).toMatchObject({ n: 1 });
  });

  it('refuses only the new fields of a call that mixes them with buffered ones', async () => {
    const buffer = buffered(freshCollection(), 60_000, { autoFlush: false, bufferLimitFields: limit });
    await fillUntilFull(buffer);
    // Made in one event-loop turn, these travel to Redis in one script call.
    const outcomes = await Promise.allSettled([
      buffer.increment('doc', 'f0', 1),
      buffer.increment('doc', 'brand-new', 1),
      buffer.increment('doc', 'f2', 1),
    ]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(BufferFullError);
    expect(await buffer.readIncremented('doc', 'f0')).toBe(2);
  });
});

describe('a backlog cut into batches', () => {
  it('keeps a $set and a later $inc of one field in call order (their operators move together)', async () => {
    const collection = freshCollection();
    const buffer = buffered(collection, 60_000, { autoFlush: false, maxBatchFields: 50 });
    // Past 512 fields the hash is a hashtable: HSCAN no longer returns fields in insertion order.
    for (let k = 0; k < 300; k++) {
      await buffer.set('doc', `x${k}`, 10);
      await buffer.increment('doc', `x${k}`, 5);
    }
    const report = await buffer.flush();
    expect(report.batches).toBeGreaterThan(10);
    const document = await collection.findOne({ _id: 'doc' as never });
    expect(Array.from({ length: 300 }, (_, k) => document?.[`x${k}`]).filter((x) => x !== 15)).toEqual([]);
  });
});
