import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { Db } from 'mongodb';
import { validatedEnv } from '@bufferq/config';
import { DatastoresModule, MONGO_DB, REDIS_CLIENT, datastoresEnv } from '@bufferq/datastores';
import { eventually, testServices, uniqueName } from '@bufferq/testing';

describe('DatastoresModule', () => {
  it('connects to the real Redis and MongoDB-wire server and closes them on shutdown', async () => {
    const { redisUrl, mongoUrl } = testServices();
    const moduleRef = await Test.createTestingModule({
      imports: [DatastoresModule.forRoot({ redisUrl, mongoUrl, mongoDb: uniqueName('ds') })],
    }).compile();
    const app = await moduleRef.init();
    const redis = app.get<Redis>(REDIS_CLIENT);
    const db = app.get<Db>(MONGO_DB);
    expect(await redis.ping()).toBe('PONG');
    await db.collection('probe').insertOne({ _id: 'x' as never, n: 1 });
    expect(await db.collection('probe').findOne({ _id: 'x' as never })).toEqual({ _id: 'x', n: 1 });
    await db.dropDatabase();
    await app.close();
    expect(await eventually(() => redis.status === 'end', 2_000)).toBe(true);
  });
});

describe('validatedEnv', () => {
  it('fills documented defaults and names every bad variable', () => {
    const validate = validatedEnv(datastoresEnv);
    expect(validate({})).toEqual({
      REDIS_URL: 'redis://127.0.0.1:6379',
      MONGO_URL: 'mongodb://127.0.0.1:27017',
      MONGO_DB: 'bufferq',
    });
    expect(() => validate({ REDIS_URL: 'not a url', MONGO_DB: '' })).toThrow(/REDIS_URL.*\n.*MONGO_DB/s);
  });
});
