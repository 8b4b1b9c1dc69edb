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
  /** One call of producer `p` on the buffer at `keys`, with its updates packed as the producer packs them. */
  const bufferCall = (keys: string, mode: string, limit: number, number: number, args: Array<string | number>) =>
    context.redis.eval(
      source,
      4,
      `${keys}:live`,
      `${keys}:caller:p`,
      `${keys}:dead-letters`,
      `${keys}:caller:p:ring`,
      number,
      limit,
      mode,
      packStrings(args.map(String)),
    ) as Promise<unknown[]>;
  const call = (keys: string, number: number, delta: number) =>
    bufferCall(keys, 'updates', 1_000_000, number, ['is1:dn', delta]);

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

  const grouped = (keys: string, mode: string, limit: number, number: number, ...args: Array<string | number>) =>
    bufferCall(keys, mode, limit, number, args);

  // 'increments' is the producer's call when every update is an integer $inc: each runs as a bare
  // HINCRBY, and must answer as 'runs' does.
  it.each(['runs', 'increments'])('buffers %s of one value as the same updates in order', async (mode) => {
    const keys = base();
    const runs = (number: number, ...args: Array<string | number>) => grouped(keys, mode, 1_000_000, number, ...args);
    expect(await runs(1, 1, 3, 'is1:an', 'is1:bn', 'is1:an', -5, 1, 'is1:bn')).toEqual([3]);
    expect(await context.redis.hmget(`${keys}:live`, 'is1:an', 'is1:bn')).toEqual(['2', '-4']);
    await context.redis.hset(`${keys}:live`, 'is1:cn', String(2n ** 63n - 1n));
    // A refused update lists every outcome, in call order.
    expect(await runs(2, 1, 3, 'is1:an', 'is1:cn', 'is1:bn')).toEqual([4, 0, expect.stringMatching(/overflow/), 0]);
    expect(await context.redis.hmget(`${keys}:live`, 'is1:an', 'is1:bn')).toEqual(['3', '-3']);
    // Refusals in two runs, the first update refused: each outcome in its place.
    expect(await runs(3, 1, 2, 'is1:cn', 'is1:an', 2, 2, 'is1:bn', 'is1:cn')).toEqual([
      4,
      expect.stringMatching(/overflow/),
      0,
      0,
      expect.stringMatching(/overflow/),
    ]);
    expect(await context.redis.hmget(`${keys}:live`, 'is1:an', 'is1:bn')).toEqual(['4', '-1']);
    // A re-sent call changes nothing and answers as its first run did.
    const replayed = await runs(3, 1, 2, 'is1:cn', 'is1:an', 2, 2, 'is1:bn', 'is1:cn');
    expect(replayed[1]).toBe('replayed');
    expect(JSON.parse(replayed[2] as string)).toEqual([
      expect.stringMatching(/overflow/),
      0,
      0,
      expect.stringMatching(/overflow/),
    ]);
    expect(await context.redis.hmget(`${keys}:live`, 'is1:an', 'is1:bn')).toEqual(['4', '-1']);
  });

  it.each(['runs', 'increments'])('refuses %s that would add fields past the limit, one by one', async (mode) => {
    const keys = base();
    // The limit counts update fields (the bookkeeping field #since is not one): two fit, the third not.
    expect(await grouped(keys, mode, 2, 1, 1, 3, 'is1:an', 'is1:bn', 'is1:cn')).toEqual([3, 0, 0, 'BMI_BUFFER_FULL']);
    // Fields already buffered still take updates at the limit.
    expect(await grouped(keys, mode, 2, 2, 5, 2, 'is1:dn', 'is1:an')).toEqual([3, 'BMI_BUFFER_FULL', 0]);
    expect(await context.redis.hmget(`${keys}:live`, 'is1:an', 'is1:bn', 'is1:cn', 'is1:dn')).toEqual([
      '6',
      '1',
      null,
      null,
    ]);
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
