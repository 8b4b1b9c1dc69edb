// The indexes the timers collection carries after a process starts, on a database earlier versions used.
import { MongoClient } from 'mongodb';
import { testServices, uniqueName } from '@bufferq/testing';
import { TIMERS_COLLECTION } from '../src/storage/timers.repository';
import { fastTimersConfig, startTimers } from './fixtures/timers-harness';

describe('timers indexes', () => {
  const { redisUrl, mongoUrl } = testServices();
  let mongo: MongoClient;
  beforeAll(async () => {
    mongo = await new MongoClient(mongoUrl).connect();
  });
  afterAll(() => mongo.close());

  /** Starts the timers api on `mongoDb` and answers the index names of its timers collection. */
  const indexesAfterStart = async (mongoDb: string) => {
    const timers = await startTimers({
      redisUrl,
      mongoUrl,
      mongoDb,
      config: fastTimersConfig({ TIMERS_REDIS_PREFIX: uniqueName('tidx') }),
      worker: false,
    });
    await timers.close();
    const indexes = await mongo.db(mongoDb).collection(TIMERS_COLLECTION).listIndexes().toArray();
    await mongo.db(mongoDb).dropDatabase();
    return indexes.map((index) => [index.name, index.key]);
  };

  it('drops the indexes earlier versions created (nothing reads them; each costs every insert)', async () => {
    const mongoDb = uniqueName('tidx');
    const collection = mongo.db(mongoDb).collection(TIMERS_COLLECTION);
    await collection.createIndex({ status: 1, _id: -1 }, { name: 'status_id' });
    await collection.createIndex({ tenant: 1, _id: -1 }, { name: 'tenant_id' });
    const indexes = await indexesAfterStart(mongoDb);
    expect(indexes.map(([name]) => name).sort()).toEqual(
      ['_id_', 'idempotencyKey_unique', 'status_runAt', 'tenant_status_id'].sort(),
    );
  });

  it("keeps an operator's own index that has a retired name but other keys", async () => {
    const mongoDb = uniqueName('tidx');
    await mongo.db(mongoDb).collection(TIMERS_COLLECTION).createIndex({ tenant: 1 }, { name: 'tenant_id' });
    const indexes = await indexesAfterStart(mongoDb);
    expect(indexes).toContainEqual(['tenant_id', { tenant: 1 }]);
  });
});
