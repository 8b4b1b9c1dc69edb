import { uniqueName } from '@bufferq/testing';
import { SCRIPTS } from '../src/buffer-shard';
import { packStrings } from '../src/packed-arguments';
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
      packStrings(['is1:dn', String(delta)]),
    ) as Promise<unknown[]>;

  it('applies a call that arrives after a later call ran, and each re-sent call once', async () => {
    const keys = base();
    // A call that buffered everything answers the hash's length alone.
    expect(await call(keys, 13, 100)).toEqual([2]);
    expect(await call(keys, 12, 10)).toEqual([2]); // out of order: not a replay
    expect((await call(keys, 12, 10))[1]).toBe('replayed');
    expect((await call(keys, 13, 100))[1]).toBe('replayed');
    expect(await call(keys, 14, 1)).toEqual([2]);
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
        packStrings(['is1:an', '1', 'is1:bn', '1']),
      ) as Promise<unknown[]>;
    expect((await full(1)).slice(1)).toEqual([0, 'BMI_BUFFER_FULL']);
    const replayed = await full(1);
    expect(replayed[1]).toBe('replayed');
    expect(JSON.parse(replayed[2] as string)).toEqual([0, 'BMI_BUFFER_FULL']);
  });

  it('takes a call whose ring slot a call 1,024 or more later took as already run', async () => {
    const keys = base();
    await call(keys, 5_000, 1);
    expect((await call(keys, 5_000 - 1_024, 1))[1]).toBe('replayed');
    expect((await call(keys, 5_000 - 2 * 1_024, 1))[1]).toBe('replayed');
  });

  it('runs a call that never ran, however many later calls ran (its ring slot holds an earlier call)', async () => {
    const keys = base();
    await call(keys, 4_000, 1);
    await call(keys, 5_000, 10);
    // 5,000 - 1,000 = 4,000 ran; 3,999 never did, though more than 1,000 later calls ran since.
    expect(await call(keys, 3_999, 100)).toEqual([2]);
    expect(await context.redis.hget(`${keys}:live`, 'is1:dn')).toBe('111');
  });

  it('buffers runs of one value as the same updates in order', async () => {
    const keys = base();
    const runs = (number: number, ...args: Array<string | number>) =>
      context.redis.eval(
        source,
        4,
        `${keys}:live`,
        `${keys}:caller:p`,
        `${keys}:dead-letters`,
        `${keys}:caller:p:ring`,
        number,
        1_000_000,
        'runs',
        packStrings(args.map(String)),
      ) as Promise<unknown[]>;
    expect(await runs(1, 1, 3, 'is1:an', 'is1:bn', 'is1:an', -5, 1, 'is1:bn')).toEqual([3]);
    expect(await context.redis.hmget(`${keys}:live`, 'is1:an', 'is1:bn')).toEqual(['2', '-4']);
    await context.redis.hset(`${keys}:live`, 'is1:cn', String(2n ** 63n - 1n));
    // A refused update lists every outcome, in call order.
    expect(await runs(2, 1, 3, 'is1:an', 'is1:cn', 'is1:bn')).toEqual([4, 0, expect.stringMatching(/overflow/), 0]);
    expect(await context.redis.hmget(`${keys}:live`, 'is1:an', 'is1:bn')).toEqual(['3', '-3']);
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
