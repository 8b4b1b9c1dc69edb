import { Long } from 'mongodb';
import { bufferTestContext } from './fixtures/buffer-test-context';

// Updates MongoDB refuses for good are set aside, kept in a bounded list, and can be put back.
const context = bufferTestContext('dead_letters');

describe('Dead letters', () => {
  it('puts a refused update back into the buffer once its cause is fixed, and it is applied once', async () => {
    const collection = context.freshCollection();
    await collection.insertOne({ _id: 'text' as never, n: 'not a number' });
    const buffer = context.buffered(collection);
    await buffer.increment('text', 'n', 5);
    await buffer.increment('fine', 'n', 1);
    expect((await buffer.flush()).deadLetters).toBe(1);
    expect(await buffer.deadLetterCount()).toBe(1);
    const [letter] = await buffer.deadLetters();
    expect(letter).toMatchObject({
      documentId: 'text',
      fields: { 'is4:textn': '5' },
      error: expect.stringMatching(/non-numeric|numeric|\$inc/i),
    });

    await collection.updateOne({ _id: 'text' as never }, { $set: { n: 10 } }); // the cause, fixed
    expect(await buffer.replayDeadLetters()).toBe(1);
    expect(await buffer.deadLetterCount()).toBe(0);
    expect(await buffer.replayDeadLetters()).toBe(0); // nothing left to put back twice
    await buffer.flush();
    expect((await collection.findOne({ _id: 'text' as never }))?.n).toBe(15);
    expect((await collection.findOne({ _id: 'fine' as never }))?.n).toBe(1);
  });

  it('letters only the refused update of a bulk, whichever index the server reports (FerretDB reports 0)', async () => {
    const collection = context.freshCollection();
    await collection.insertOne({ _id: 'huge' as never, n: Long.fromBigInt(-(2n ** 63n) + 5n) });
    const buffer = context.buffered(collection);
    for (const id of ['a', 'b', 'huge', 'c']) await buffer.increment(id, 'n', id === 'huge' ? -(2n ** 62n) : 1);
    expect((await buffer.flush()).deadLetters).toBe(1);
    expect((await buffer.deadLetters()).map((letter) => letter.documentId)).toEqual(['huge']);
    const docs = await collection.find({ _id: { $in: ['a', 'b', 'c'] as never[] } }).toArray();
    expect(docs.map((doc) => doc.n)).toEqual([1, 1, 1]);
  });

  it('keeps a letter that cannot be buffered again, and keeps only the newest maxDeadLetters', async () => {
    const collection = context.freshCollection();
    for (const id of ['a', 'b', 'c']) await collection.insertOne({ _id: id as never, n: 'text' });
    const buffer = context.buffered(collection, 60_000, { maxDeadLetters: 2 });
    for (const id of ['a', 'b', 'c']) await buffer.increment(id, 'n', 1);
    await buffer.flush();
    expect(await buffer.deadLetters()).toHaveLength(2);
    await buffer.dropDeadLetters();
    expect(await buffer.deadLetterCount()).toBe(0);

    await buffer.increment('a', 'n', 1);
    await buffer.flush();
    expect(await buffer.deadLetterCount()).toBe(1);
    // A full buffer takes no new field: the letter stays a letter instead of being lost.
    const full = context.buffered(collection, 60_000, { namespace: buffer.namespace, bufferLimitFields: 1 });
    await full.increment('other', 'n', 1);
    expect(await full.replayDeadLetters()).toBe(0);
    expect(await buffer.deadLetterCount()).toBe(1);
  });
});
