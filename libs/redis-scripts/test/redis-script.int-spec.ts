import { join } from 'node:path';
import Redis from 'ioredis';
import { RedisScript } from '@bufferq/redis-scripts';
import { redisServersUnderTest, uniqueName } from '@bufferq/testing';

const fixture = (file: string) => join(__dirname, 'fixtures', file);

describe.each(redisServersUnderTest())('RedisScript on $name', ({ url }) => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(url);
  });
  afterAll(() => redis.quit());

  it('runs a script with the constants TypeScript gave it', async () => {
    const script = new RedisScript(fixture('add-to-total-1.lua'), { UNIT_NAME: 'it"ems', UNIT_SIZE: 12 });
    const key = uniqueName('total');
    expect(await script.run(redis, [key], [5])).toEqual([5, 'it"ems', 12]);
    expect(await script.run(redis, [key], [2])).toEqual([7, 'it"ems', 12]);
  });

  it('sends the source again when the server lost its scripts (NOSCRIPT)', async () => {
    const script = new RedisScript(fixture('add-to-total-1.lua'), { UNIT_NAME: 'u', UNIT_SIZE: 1 });
    await script.load(redis);
    await redis.script('FLUSH');
    const key = uniqueName('total');
    expect(await script.run(redis, [key], [3])).toEqual([3, 'u', 1]);
  });

  it('refuses a call that gives a script another number of keys than its file name says', async () => {
    const script = new RedisScript(fixture('add-to-total-1.lua'), { UNIT_NAME: 'u', UNIT_SIZE: 1 });
    await expect(script.run(redis, ['a', 'b'], [1])).rejects.toThrow('takes 1 keys, was given 2');
  });
});

describe('RedisScript files', () => {
  it('refuses a file not named <what-it-does>-<key count>.lua', () => {
    expect(() => new RedisScript(fixture('add_to_total.lua'))).toThrow('is not named');
  });

  it('refuses a constant that is not a Lua-safe UPPER_SNAKE_CASE name', () => {
    expect(() => new RedisScript(fixture('add-to-total-1.lua'), { 'x = 1 --': 1 })).toThrow('UPPER_SNAKE_CASE');
  });
});
