import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueName } from '@bufferq/testing';
import { bufferTestContext } from './fixtures/buffer-test-context';

// The buffer script's at-most-once contract, called as a client would: calls of one producer instance
// may arrive re-sent (reply lost) or out of order (a call that met NOSCRIPT after a Redis restart is
// sent again after later calls ran).
const context = bufferTestContext('replay');
const source = readFileSync(join(__dirname, '..', 'src', 'scripts', 'buffer_updates.lua'), 'utf8');

describe('buffer_updates.lua call numbers', () => {
  const base = () => `bmi:{${uniqueName('calls')}}`;
  const call = (keys: string, number: number, delta: number) =>
    context.redis.eval(source, 4, `${keys}:live`, `${keys}:caller:p`, `${keys}:dead-letters`, `${keys}:caller:p:ring`, number, 1_000_000, 'updates', 'i', 'is1:dn', delta) as Promise<unknown[]>;

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
      context.redis.eval(source, 4, `${keys}:live`, `${keys}:caller:p`, `${keys}:dead-letters`, `${keys}:caller:p:ring`, number, 1, 'updates', 'i', 'is1:an', 1, 'i', 'is1:bn', 1) as Promise<unknown[]>;
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
