import { uniqueName } from '@bufferq/testing';
import { SCRIPTS } from '../src/buffer-shard';
import { bufferTestContext } from './fixtures/buffer-test-context';

// The buffer script's at-most-once contract, called as a client would: calls of one producer instance
// may arrive re-sent (reply lost) or out of order (a call that met NOSCRIPT after a Redis restart is
// sent again after later calls ran).
const context = bufferTestContext('replay');
const source = SCRIPTS.bufferUpdates.source;

describe('buffer-updates-4.lua call numbers', () => {
  const base = () => `bmi:{${uniqueName('calls')}}`;
  const call = (keys: string, number: number, delta: number) =>
    context.redis.eval(
      source,
      4,
      `${keys}:live`,
      `${keys}:caller:p`,
      `${keys}:dead-letters`,
      `${keys}:caller:p:ring`,
      number,
      1_000_000,
      'updates',
      'i',
      'is1:dn',
      delta,
    ) as Promise<unknown[]>;

  it('applies a call that arrives after a later call ran, and each re-sent call once', async () => {
    const keys = base();
    expect((await call(keys, 13, 100))[1]).toBe(0);
    expect((await call(keys, 12, 10))[1]).toBe(0); // out of order: not a replay
    expect((await call(keys, 12, 10))[1]).toBe('replayed');
    expect((await call(keys, 13, 100))[1]).toBe('replayed');
    expect((await call(keys, 14, 1))[1]).toBe(0);
    expect(await context.redis.hget(`${keys}:live`, 'is1:dn')).toBe('111');
  });

  it('answers a re-sent call that was refused as its first run did', async () => {
    const keys = base();
    const full = (number: number) =>
      context.redis.eval(
        source,
        4,
        `${keys}:live`,
        `${keys}:caller:p`,
        `${keys}:dead-letters`,
        `${keys}:caller:p:ring`,
        number,
        1,
        'updates',
        'i',
        'is1:an',
        1,
        'i',
        'is1:bn',
        1,
      ) as Promise<unknown[]>;
    expect((await full(1)).slice(1)).toEqual([0, 'BMI_BUFFER_FULL']);
    const replayed = await full(1);
    expect(replayed[1]).toBe('replayed');
    expect(JSON.parse(replayed[2] as string)).toEqual([0, 'BMI_BUFFER_FULL']);
  });

  it('takes a call older than the last 1,024 that ran as already run', async () => {
    const keys = base();
    await call(keys, 5_000, 1);
    expect((await call(keys, 5_000 - 1_025, 1))[1]).toBe('replayed');
  });
});

describe('incrementAll', () => {
  it('buffers every increment or none: an overflow puts back every field the call had changed', async () => {
    const collection = context.freshCollection();
    const buffer = context.buffered(collection, 60_000, { autoFlush: false });
    await buffer.increment('a', 'n', 2n ** 62n);
    await buffer.set('b', 'n', 7);
    const attempt = buffer.incrementAll([
      { documentId: 'b', fieldPath: 'n', delta: 1 },
      { documentId: 'c', fieldPath: 'n', delta: 1 },
      { documentId: 'a', fieldPath: 'n', delta: 2n ** 62n },
    ]);
    await expect(attempt).rejects.toThrow(/overflow a signed 64-bit integer/);
    expect((await buffer.stats()).bufferedFields).toBe(2);
    await buffer.incrementAll([
      { documentId: 'b', fieldPath: 'n', delta: 1 },
      { documentId: 'c', fieldPath: 'n', delta: 1 },
    ]);
    await buffer.flush();
    const docs = await collection
      .find({}, { projection: { _bmiMarkers: 0 } })
      .sort({ _id: 1 })
      .toArray();
    expect(docs.map((doc) => [doc._id, Number(doc.n)])).toEqual([
      ['a', 2 ** 62],
      ['b', 8],
      ['c', 1],
    ]);
  });
});
