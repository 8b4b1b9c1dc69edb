import { uniqueName } from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';

// Updates made while a call gathers (one event-loop turn, or the linger window) travel in one script
// call, integer $incs of one field summed into one update. Each caller still gets the outcome its own
// update would have had, in the order the updates were made.
const context = bufferTestContext('gathered');
const INT64_MAX = 2n ** 63n - 1n;

async function outcomes(calls: Array<Promise<void>>): Promise<string[]> {
  const settled = await Promise.allSettled(calls);
  return settled.map((result) =>
    result.status === 'fulfilled' ? 'buffered' : /overflow/.test(String(result.reason)) ? 'overflow' : 'other',
  );
}

describe.each([0, 5])('gathered calls, lingerMs %i', (lingerMs) => {
  const buffer = () => context.buffered(context.freshCollection(), 60_000, { autoFlush: false, lingerMs });
  const live = (namespace: string) => context.redis.hgetall(`bmi:{${namespace}}:live`);

  it('sums a field counted by many callers, and each caller learns its update is buffered', async () => {
    const namespace = uniqueName('sum');
    const buffered = context.buffered(context.freshCollection(), 60_000, { autoFlush: false, lingerMs, namespace });
    const calls = Array.from({ length: 500 }, (_, i) => buffered.increment(`k${i % 3}`, 'n', i % 2 ? 2 : -1));
    expect(new Set(await outcomes(calls))).toEqual(new Set(['buffered']));
    const held = await live(namespace);
    expect([held['is2:k0n'], held['is2:k1n'], held['is2:k2n']].map(Number)).toEqual(
      [0, 1, 2].map((k) =>
        Array.from({ length: 500 }, (_, i) => i)
          .filter((i) => i % 3 === k)
          .reduce((sum, i) => sum + (i % 2 ? 2 : -1), 0),
      ),
    );
  });

  it('refuses only the delta that overflows when deltas of one field were summed', async () => {
    const buffered = buffer();
    await buffered.increment('a', 'n', INT64_MAX - 10n);
    // One at a time, +6 fits and the second +6 overflows; their sum (+12) alone would refuse both.
    expect(await outcomes([buffered.increment('a', 'n', 6), buffered.increment('a', 'n', 6)])).toEqual([
      'buffered',
      'overflow',
    ]);
    expect(await buffered.readIncrementedExact('a', 'n')).toBe(INT64_MAX - 4n);
  });

  it('applies deltas of both signs in call order: a later negative delta does not rescue an overflow', async () => {
    const buffered = buffer();
    await buffered.increment('a', 'n', INT64_MAX - 6n);
    // In order: +4 fits, +4 overflows, -10 fits. Summed (-2) all three would pass.
    expect(
      await outcomes([
        buffered.increment('a', 'n', 4),
        buffered.increment('a', 'n', 4),
        buffered.increment('a', 'n', -10),
      ]),
    ).toEqual(['buffered', 'overflow', 'buffered']);
    expect(await buffered.readIncrementedExact('a', 'n')).toBe(INT64_MAX - 12n);
  });

  it('keeps a $set between increments of its field in order', async () => {
    const collection = context.freshCollection();
    const buffered = context.buffered(collection, 60_000, { autoFlush: false, lingerMs });
    await Promise.all([
      buffered.increment('doc', 'n', 1),
      buffered.set('doc', 'n', 10),
      buffered.increment('doc', 'n', 2),
      buffered.increment('doc', 'n', 3),
    ]);
    await buffered.flush();
    expect((await collection.findOne({ _id: 'doc' as never }))?.n).toBe(15);
  });

  it('keeps call order across the calls a large turn is cut into', async () => {
    const collection = context.freshCollection();
    const buffered = context.buffered(collection, 60_000, { autoFlush: false, lingerMs });
    // 2,000 updates in one turn travel in several calls; the updates of 'doc' land in different ones.
    const own = new Map<number, () => Promise<void>>([
      [10, () => buffered.increment('doc', 'n', 1)],
      [500, () => buffered.set('doc', 'n', 10)],
      [1_500, () => buffered.increment('doc', 'n', 2)],
      [1_999, () => buffered.increment('doc', 'n', 3)],
    ]);
    await Promise.all(
      Array.from({ length: 2_000 }, (_, i) => own.get(i)?.() ?? buffered.increment(`filler-${i % 700}`, 'n', 1)),
    );
    expect(await buffered.readIncremented('filler-0', 'n')).toBe(3);
    await buffered.flush();
    expect((await collection.findOne({ _id: 'doc' as never }))?.n).toBe(15);
  });

  it('carries ids, field paths and values of any length and script', async () => {
    const collection = context.freshCollection();
    const buffered = context.buffered(collection, 60_000, { autoFlush: false, lingerMs });
    const id = 'ключ-😀-' + 'x'.repeat(100);
    const path = 'stats.' + 'é'.repeat(200);
    // Past 21,845 UTF-16 units a string may need more than 65,535 bytes: the widest string header.
    const long = 'ü€'.repeat(11_000);
    await Promise.all([
      buffered.increment(id, path, 2),
      buffered.increment(id, 'n', -3),
      buffered.set(id, 'long', long),
      buffered.set(id, 'medium', 'ß'.repeat(100)),
      buffered.max(id, 'peak', 1.5),
      buffered.increment(id, 'ratio', 0.25),
      // Field names of 30, 31 and 32 units (short ASCII strings take a one-byte header up to 31 bytes)
      // and a short one with a unit past ASCII.
      ...[24, 25, 26].map((length) => buffered.increment('a'.repeat(length), 'n', length)),
      buffered.increment('é', 'n', 7),
    ]);
    await buffered.flush();
    const document = await collection.findOne({ _id: id as never });
    expect(document).toMatchObject({ n: -3, long, medium: 'ß'.repeat(100), peak: 1.5, ratio: 0.25 });
    expect(document?.stats?.['é'.repeat(200)]).toBe(2);
    const short = await collection.find({ _id: { $ne: id as never } }, { projection: { n: 1 } }).toArray();
    expect(Object.fromEntries(short.map((doc) => [doc._id, doc.n]))).toEqual({
      ['a'.repeat(24)]: 24,
      ['a'.repeat(25)]: 25,
      ['a'.repeat(26)]: 26,
      é: 7,
    });
  });

  it('refuses a new field past the buffer limit for every caller that counted it, keeps counting buffered ones', async () => {
    const buffered = context.buffered(context.freshCollection(), 60_000, {
      autoFlush: false,
      lingerMs,
      bufferLimitFields: 1,
    });
    await buffered.increment('old', 'n', 1);
    const settled = await Promise.allSettled([
      buffered.increment('new', 'n', 1),
      buffered.increment('old', 'n', 1),
      buffered.increment('new', 'n', 1),
    ]);
    expect(settled.map((result) => (result.status === 'rejected' ? result.reason.name : 'buffered'))).toEqual([
      'BufferFullError',
      'buffered',
      'BufferFullError',
    ]);
    expect(await buffered.readIncremented('old', 'n')).toBe(2);
  });
});

describe('incrementAll with repeating deltas (sent as runs of one value)', () => {
  it('buffers all or nothing: a second +1 that overflows refuses the whole batch', async () => {
    const buffered = context.buffered(context.freshCollection(), 60_000, { autoFlush: false });
    await buffered.increment('a', 'n', INT64_MAX - 1n);
    const batch = Array.from({ length: 10 }, (_, i) => ({ documentId: `k${i}`, fieldPath: 'n', delta: 1 }));
    await expect(
      buffered.incrementAll([
        ...batch,
        { documentId: 'a', fieldPath: 'n', delta: 1 },
        { documentId: 'a', fieldPath: 'n', delta: 1 },
      ]),
    ).rejects.toThrow(/overflow a signed 64-bit integer/);
    expect((await buffered.stats()).bufferedFields).toBe(1);
    expect(await buffered.readIncrementedExact('a', 'n')).toBe(INT64_MAX - 1n);
    await buffered.incrementAll([...batch, { documentId: 'a', fieldPath: 'n', delta: 1 }]);
    expect(await buffered.readIncrementedExact('a', 'n')).toBe(INT64_MAX);
    expect(await Promise.all(batch.map(({ documentId }) => buffered.readIncremented(documentId, 'n')))).toEqual(
      batch.map(() => 1),
    );
  });
});

describe('lingerMs', () => {
  it('refuses a negative or non-finite linger window', () => {
    expect(() => context.buffered(context.freshCollection(), 60_000, { lingerMs: -1 })).toThrow(/lingerMs/);
    expect(() => context.buffered(context.freshCollection(), 60_000, { lingerMs: Infinity })).toThrow(/lingerMs/);
  });
});
