import { Collection, Document } from 'mongodb';
import { redisServersUnderTest, uniqueName } from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';

/** A collection whose bulkWrite stops before or after writing until `release()` is called. */
function gatedCollection(collection: Collection<Document>, when: 'before-write' | 'after-write') {
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const atGate = new Promise<void>((resolve) => (reached = resolve));
  const gated = new Proxy(collection, {
    get(target, property, receiver) {
      if (property !== 'bulkWrite') return Reflect.get(target, property, receiver);
      return async (...args: Parameters<Collection['bulkWrite']>) => {
        if (when === 'before-write') {
          reached();
          await gate;
        }
        const result = await target.bulkWrite(...args);
        if (when === 'after-write') {
          reached();
          await gate;
        }
        return result;
      };
    },
  });
  return { gated, atGate, release };
}

describe.each(redisServersUnderTest())('on $name', ({ url }) => {
  const { freshCollection, buffered: bufferedWith } = bufferTestContext('bmi_read', url);
  const buffered = (collection: Collection<Document>, namespace: string) =>
    bufferedWith(collection, 60_000, { namespace, autoFlush: false });

  describe('BufferedMongoIncrements.readIncremented', () => {
    it('returns MongoDB value plus buffered increments, and 0 for an unknown document', async () => {
      const collection = freshCollection();
      const buffer = buffered(collection, uniqueName('ns'));
      expect(await buffer.readIncremented('nobody', 'value')).toBe(0);
      await buffer.increment('k', 'value', 5);
      expect(await buffer.readIncremented('k', 'value')).toBe(5);
      await buffer.flush();
      await buffer.increment('k', 'value', -2);
      await buffer.increment('k', 'value', 0.5);
      expect(await buffer.readIncremented('k', 'value')).toBe(3.5);
      expect((await collection.findOne({ _id: 'k' as never }))?.value).toBe(5);
    });

    it.each(['before-write', 'after-write'] as const)(
      'counts a draining batch exactly once while a flush is stopped %s',
      async (when) => {
        const collection = freshCollection();
        const namespace = uniqueName('ns');
        const producer = buffered(collection, namespace);
        await producer.increment('k', 'value', 10);
        await producer.flush();
        await producer.increment('k', 'value', 7);
        const { gated, atGate, release } = gatedCollection(collection, when);
        const flusher = buffered(gated, namespace);
        const flushing = flusher.flush();
        await atGate;
        await producer.increment('k', 'value', 1); // lands in the live hash, after the claim
        expect(await producer.readIncremented('k', 'value')).toBe(18);
        release();
        await flushing;
        expect(await producer.readIncremented('k', 'value')).toBe(18);
      },
    );
  });
});
